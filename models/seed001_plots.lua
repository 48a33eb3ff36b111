-- Seed 001's experiment 2 with its pictures: conv, MaxPool2D, conv,
-- AvgPool2D, conv, Dense 128, Dropout 0.3 on Fashion-MNIST (Keras: 241,546
-- parameters, test 0.8921), EarlyStopping on val_loss, then the seed's
-- matplotlib figures: the loss/accuracy curves side by side (curves.png)
-- and a 4x4 grid of test images with predictions, red where wrong (grid.png).
-- A CSV log (training.csv) and the best model (best.h5) are kept as well.
--
--   nnc models/seed001_plots.lua [--epochs 10] [--out .]
local out = nnc.option("out", ".")
local train, test = data.fashion_mnist() -- x already /255 and shaped [N, 28, 28, 1]
local x_train, y_train, x_test, y_test = train.x, train.y, test.x, test.y
local class_names = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
  "Ankle boot" }

local model = nn.Sequential {
  nn.Conv2D { 32, 3, activation = "relu", input_shape = { 28, 28, 1 } },
  nn.MaxPool2D { 2, strides = 2 },
  nn.Conv2D { 64, 3, activation = "relu" },
  nn.AvgPool2D { 2, strides = 2 },
  nn.Conv2D { 64, 3, activation = "relu" },
  nn.Flatten(),
  nn.Dense { 128, activation = "relu" },
  nn.Dropout { rate = 0.3 },
  nn.Dense { 10, activation = "softmax" },
}
model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
model:summary()
local history = model:fit(x_train, y_train, {
  epochs = nnc.option("epochs", 10), validation_split = 0.25,
  callbacks = {
    nn.EarlyStopping { patience = 5, monitor = "val_loss" },
    nn.CSVLogger(out .. "/training.csv"),
    nn.ModelCheckpoint { out .. "/best.h5", monitor = "val_loss", save_best_only = true },
  },
})
local loss, acc = model:evaluate(x_test, y_test)
print(string.format("test loss: %.4f - test accuracy: %.4f", loss, acc))

nnc.plot(history, out .. "/curves.png", { title = "Fashion-MNIST, experiment 2" })
local images = x_test:slice(1, 16)
nnc.show_images(images, out .. "/grid.png", { labels = y_test:slice(1, 16), predictions = model:predict(images),
  class_names = class_names, cols = 4 })
