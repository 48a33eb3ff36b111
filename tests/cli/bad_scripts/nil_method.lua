local d = nn.Dense { 3 }
d:build() --!
