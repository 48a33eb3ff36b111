-- A multilayer perceptron on Fashion-MNIST (Keras: 101,770 parameters).
local train, test = data.fashion_mnist()

local model = nn.Sequential {
  nn.Flatten { input_shape = { 28, 28, 1 } },
  nn.Dense { 128, activation = "relu" },
  nn.Dense { 10, activation = "softmax" },
}

model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
model:summary()
model:fit(train.x, train.y, { epochs = nnc.option("epochs", 5), batch_size = 32, validation_split = 0.1 })
local loss, acc = model:evaluate(test.x, test.y)
print(string.format("test loss: %.4f - test accuracy: %.4f", loss, acc))
