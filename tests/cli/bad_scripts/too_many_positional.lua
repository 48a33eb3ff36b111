local d = nn.Dense { 3, 4 } --!
