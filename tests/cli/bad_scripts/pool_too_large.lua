local m = nn.Sequential { nn.Conv2D { 4, 3, input_shape = { 5, 5, 1 } },
  nn.MaxPooling2D { 4 } } --!
