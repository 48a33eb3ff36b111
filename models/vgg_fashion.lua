-- VGG-style CNN on Fashion-MNIST (Keras original: 5,240,842 parameters)
local train, test = data.fashion_mnist()          -- x: f32[N,28,28,1] in [0,1], y: i32[N]

local model = nn.Sequential {
  nn.Conv2D { 32, 3, padding = "same", activation = "relu", input_shape = { 28, 28, 1 } },
  nn.Conv2D { 64, 3, padding = "same", activation = "relu" },
  nn.MaxPool2D { 2 },
  nn.Dropout(0.5),
  nn.Conv2D { 128, 3, padding = "same", activation = "relu" },
  nn.Conv2D { 256, 3, padding = "valid", activation = "relu" },
  nn.MaxPool2D { 2 },
  nn.Dropout(0.5),
  nn.Flatten(),
  nn.Dense { 512, activation = "relu" },
  nn.Dropout(0.5),
  nn.Dense { 256, activation = "relu" },
  nn.Dropout(0.5),
  nn.Dense { 10, activation = "softmax" },
}

model:compile { optimizer = nn.Adam(), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
model:summary()
local history = model:fit(train.x, train.y, {
  epochs = nnc.option("epochs", 2), batch_size = 32, validation_split = 0.25,
  callbacks = { nn.EarlyStopping { monitor = "val_loss", patience = 5 } },
})
local loss, acc = model:evaluate(test.x, test.y)
print(string.format("test loss: %.4f - test accuracy: %.4f", loss, acc))
