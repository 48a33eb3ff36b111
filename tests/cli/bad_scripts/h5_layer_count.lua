local m = nn.Sequential { nn.Dense { 3, activation = "softmax", input_shape = { 2 } } }
m:save_weights("w.h5")
local m2 = nn.Sequential { nn.Dense { 3, input_shape = { 2 } }, nn.Dense { 3 } }
m2:load_weights("w.h5") --!
