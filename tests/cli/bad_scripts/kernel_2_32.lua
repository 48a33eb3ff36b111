local m = nn.Sequential { nn.Conv2D { 16, 4294967296, input_shape = { 8, 8, 16 } } } --!
