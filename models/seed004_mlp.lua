-- Seed 004's Keras MLP: four Dense(512) + relu + Dropout(0.3) blocks on
-- flattened 784-pixel rows, one-hot labels with categorical cross-entropy,
-- Adam, metrics = {'acc'} (so the bar and the history say acc, as Keras
-- does), batch 100, 15 epochs. Keras: 1,195,018 parameters, test 0.9825.
--
--   nnc models/seed004_mlp.lua [--dataset mnist|fashion_mnist] [--epochs 15]
local dataset = nnc.option("dataset", "mnist")
local train, test = data[dataset]()
local x_train = train.x:reshape { #train.x, 784 }
local x_test = test.x:reshape { #test.x, 784 }
local y_train = data.to_categorical(train.y, 10)
local y_test = data.to_categorical(test.y, 10)

local model = nn.Sequential()
model:add(nn.Dense { 512, input_shape = { 784 } })
model:add(nn.Activation("relu"))
model:add(nn.Dropout(0.3))
for _ = 1, 3 do
  model:add(nn.Dense { 512 })
  model:add(nn.Activation("relu"))
  model:add(nn.Dropout(0.3))
end
model:add(nn.Dense { 10 })
model:add(nn.Activation("softmax"))

model:compile { optimizer = nn.Adam(), loss = "categorical_crossentropy", metrics = { "acc" } }
model:summary()
local history = model:fit(x_train, y_train, { epochs = nnc.option("epochs", 15), batch_size = 100,
  validation_data = { x_test, y_test } })
local loss, acc = model:evaluate(x_test, y_test, { batch_size = 100, verbose = 0 })
print(string.format("test loss: %.4f - test acc: %.4f (history: %d epochs of acc and val_acc)", loss, acc,
  #(history.acc or {})))
