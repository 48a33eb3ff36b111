-- A small CNN on Fashion-MNIST: two blocks of two 3x3 convolutions and a
-- pool, then a dense head (Keras: 119,484 parameters).
local train, test = data.fashion_mnist()

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
model:summary()
model:fit(train.x, train.y, { epochs = nnc.option("epochs", 3), batch_size = 32, validation_split = 0.1 })
local loss, acc = model:evaluate(test.x, test.y)
print(string.format("test loss: %.4f - test accuracy: %.4f", loss, acc))
