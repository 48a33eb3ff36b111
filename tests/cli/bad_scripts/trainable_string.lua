local d = nn.Dense { 3, trainable = "no" } --!
