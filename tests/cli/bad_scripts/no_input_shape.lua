local m = nn.Sequential { nn.Dense { 3 } } --!
m:compile { optimizer = "sgd", loss = "mse" }
