local m = nn.Sequential { nn.Dense { 12, input_shape = { 4 } },
  nn.Reshape { 5, 2 } } --!
