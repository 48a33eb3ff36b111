local m = nn.Sequential { nn.Dense { 3, activation = "softmax", input_shape = { 2 } } }
m:set_weights({ data.zeros { 2, 3 } }) --!
