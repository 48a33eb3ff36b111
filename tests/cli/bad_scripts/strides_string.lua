local p = nn.MaxPooling2D { 2, strides = "2" } --!
