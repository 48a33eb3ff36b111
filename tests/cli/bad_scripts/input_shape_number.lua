local m = nn.Sequential { nn.Dense { 3, input_shape = 4 } } --!
