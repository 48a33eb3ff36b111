local m = nn.Sequential { nn.Dense { 1000000, input_shape = { 1000000 } } } --!
