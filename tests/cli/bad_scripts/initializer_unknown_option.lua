local d = nn.Dense { 3, kernel_initializer = nn.initializers.glorot_uniform { mean = 0 } } --!
