local m = nn.Sequential { nn.Dense { 3, activation = "softmax", input_shape = { 2 } } }
m:save_weights("w.safetensors")
local m2 = nn.Sequential { nn.Dense { 4, activation = "softmax", input_shape = { 2 } } }
m2:load_weights("w.safetensors") --!
