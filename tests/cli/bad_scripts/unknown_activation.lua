local d = nn.Dense { 3, activation = "relu6" } --!
