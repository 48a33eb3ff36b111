local d = nn.Dense { 3, kernel_initializer = "xavier" } --!
