local d = nn.Dense { "32", input_shape = { 4 } } --!
