-- Seed inputs for the fuzz harnesses, written by nnc itself: weights as HDF5
-- and safetensors, whole models (plain, compiled, trained) as HDF5. Run by
-- tests/fuzz/seeds.sh with --out DIR; the text IR comes from --dump-ir.
local out = nnc.option("out", ".")

local cnn = nn.Sequential {
  nn.Conv2D { 4, { 3, 3 }, input_shape = { 8, 8, 1 }, activation = "relu", padding = "same" },
  nn.MaxPooling2D { { 2, 2 } },
  nn.Flatten {},
  nn.Dropout { 0.25 },
  nn.Dense { 10, activation = "softmax" },
}
cnn:save_weights(out .. "/cnn_weights.h5")
cnn:save_weights(out .. "/cnn_weights.safetensors")
cnn:save(out .. "/cnn_plain.h5")

local x = nn.Input { shape = { 6 } }
local h = nn.Dense { 5, activation = "tanh", name = "hidden" }(x)
local mlp = nn.Model { inputs = x, outputs = nn.Dense { 3, activation = "softmax" }(h), name = "mlp" }
mlp:compile { optimizer = nn.SGD { learning_rate = 0.05, momentum = 0.9 }, loss = "categorical_crossentropy",
  metrics = { "accuracy" } }
mlp:save(out .. "/mlp_compiled.h5")

cnn:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
cnn:fit(data.zeros { 4, 8, 8, 1 }, data.tensor({ 0, 3, 9, 1 }, "i32"), { epochs = 1, batch_size = 2, verbose = 0 })
cnn:save(out .. "/cnn_trained.h5")
cnn:save_weights(out .. "/cnn_trained.safetensors")
