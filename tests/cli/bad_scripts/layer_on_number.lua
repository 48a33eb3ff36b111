local y = nn.Dense { 3 }(5) --!
