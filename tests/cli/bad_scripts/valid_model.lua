local m = nn.Sequential { nn.Dense { 3, activation = "softmax", input_shape = { 2 } } }
m:compile { optimizer = "sgd", loss = "sparse_categorical_crossentropy" }
