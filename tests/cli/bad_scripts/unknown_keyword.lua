local d = nn.Dense { 3, activaton = "relu" } --!
