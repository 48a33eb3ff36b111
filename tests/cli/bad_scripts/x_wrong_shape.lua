local m = nn.Sequential { nn.Dense { 3, activation = "softmax", input_shape = { 2 } } }
m:compile { optimizer = "sgd", loss = "sparse_categorical_crossentropy" }
local x = data.tensor { { 1, 2, 3 }, { 3, 4, 5 }, { 0, 1, 2 }, { 1, 0, 2 } }
local y = data.tensor({ 0, 1, 2, 1 }, "i32")
m:fit(x, y, { verbose = 0 }) --!
