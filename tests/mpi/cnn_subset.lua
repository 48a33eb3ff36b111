-- models/cnn.lua's model on a small subset of Fashion-MNIST, for the
-- data-parallel tests: one process and `mpirun -np 2` must print the same
-- losses and write the same weights. --out PATH saves the weights;
-- with --out, a CSV log (PATH.csv) and the weights in HDF5 (PATH.h5) too;
-- --rows N and --epochs N size the run; --marker PATH is created once
-- training has taken two steps (the failure tests wait for it).
local train, test = data.fashion_mnist()
local rows = tonumber(nnc.option("rows", 256))
local x, y = train.x:slice(1, rows), train.y:slice(1, rows)

local model = nn.Sequential {
  nn.Conv2D { 30, 3, padding = "same", activation = "relu", input_shape = { 28, 28, 1 } },
  nn.Conv2D { 30, 3, padding = "same", activation = "relu" },
  nn.MaxPool2D { 2 },
  nn.Conv2D { 30, 3, padding = "same", activation = "relu" },
  nn.Conv2D { 30, 3, padding = "same", activation = "relu" },
  nn.MaxPool2D { 2 },
  nn.Flatten(),
  nn.Dense { 64, activation = "relu" },
  nn.Dropout(0.3),
  nn.Dense { 10, activation = "softmax" },
}

model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
local losses = {}
local marker = nnc.option("marker", "")
local record = {
  on_train_batch_end = function(self, batch, logs)
    losses[#losses + 1] = logs.loss
    if batch == 1 and marker ~= "" then io.open(marker, "w"):close() end
  end,
}
local out = nnc.option("out", "")
local callbacks = { record }
if out ~= "" then callbacks[2] = nn.CSVLogger(out .. ".csv") end
model:fit(x, y, { epochs = tonumber(nnc.option("epochs", 1)), batch_size = 32, verbose = 0,
                  validation_split = 0.125, callbacks = callbacks })
for i, l in ipairs(losses) do print(string.format("step %d loss %.7f", i, l)) end
local loss, acc = model:evaluate(test.x:slice(1, 64), test.y:slice(1, 64), { verbose = 0 })
print(string.format("evaluate loss %.7f accuracy %.7f", loss, acc))
local p = model:predict(test.x:slice(1, 10))
print(string.format("predict %.7f %.7f", p[1][1], p[10][10]))
if out ~= "" then
  model:save_weights(out)
  model:save_weights(out .. ".h5")
end
