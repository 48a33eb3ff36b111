-- A CNN with batch normalization on Fashion-MNIST, as the seeds write one
-- (Keras: Total 220,874 / Trainable 220,554 / Non-trainable 320). Each
-- convolution feeds BatchNormalization before its ReLU, so at inference the
-- normalization folds into the convolution's epilogue.
local train, test = data.fashion_mnist()

local model = nn.Sequential {
  nn.Conv2D { 32, 3, padding = "same", input_shape = { 28, 28, 1 } },
  nn.BatchNormalization(),
  nn.Activation("relu"),
  nn.MaxPooling2D { 2 },
  nn.Conv2D { 64, 3, padding = "same" },
  nn.BatchNormalization(),
  nn.Activation("relu"),
  nn.MaxPooling2D { 2 },
  nn.Flatten(),
  nn.Dense { 64 },
  nn.BatchNormalization(),
  nn.Activation("relu"),
  nn.Dense { 10, activation = "softmax" },
}

model:compile { optimizer = nn.Adam(0.001), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
model:summary()
model:fit(train.x, train.y, { epochs = nnc.option("epochs", 2), batch_size = 32, validation_split = 0.1 })
local loss, acc = model:evaluate(test.x, test.y)
print(string.format("test loss: %.4f - test accuracy: %.4f", loss, acc))
