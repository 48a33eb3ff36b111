local m = nn.Sequential { nn.Dense { 3, activation = "softmax", input_shape = { 2 } } }
m:compile { optimizer = "sgd", loss = "sparse_categorical_crossentropy" }
local x = data.tensor { { 1, 2 }, { 3, 4 }, { 0, 1 }, { 1, 0 } }
local y = data.tensor({ 0, 1, 2, 1 }, "i32")
m:fit(x, y, { batch_size = 0 }) --!
