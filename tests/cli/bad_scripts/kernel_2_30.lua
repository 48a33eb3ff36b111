local m = nn.Sequential { nn.Conv2D { 16, { 1073741824, 1073741824 }, input_shape = { 8, 8, 16 } } } --!
