local d = nn.Dense { 3, kernel_initializer = { "random_normal", stddev = "0.1" } } --!
