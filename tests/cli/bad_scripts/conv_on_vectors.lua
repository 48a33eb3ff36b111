local m = nn.Sequential { nn.Dense { 8, input_shape = { 4 } },
  nn.Conv2D { 4, 3 } } --!
