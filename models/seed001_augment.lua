-- Seed 001, experiment 4: the VGG-style CNN of models/vgg_fashion.lua trained
-- on Fashion-MNIST plus 30,000 augmented copies of training images
-- (ImageDataGenerator, then concatenated: 90,000 rows), EarlyStopping with
-- patience 10. Keras original: test accuracy 0.9262. The lines follow the
-- seed's own:
--   idx = np.random.randint(train_X.shape[0], size=augment_size)
--   x_augmented = gen.flow(train_X[idx], batch_size=augment_size, shuffle=False).next()
--   train_X = np.concatenate((train_X, x_augmented)); train_y = ...
--   nnc models/seed001_augment.lua [--epochs 500] [--augment 30000]
local x_train, y_train, x_test, y_test = datasets.fashion_mnist.load_data()
local train_X = (x_train / 255.0):reshape(-1, 28, 28, 1)
local test_X = (x_test / 255.0):reshape(-1, 28, 28, 1)

local gen = data.ImageDataGenerator {
  rotation_range = 10, zoom_range = 0.1, shear_range = 0.5,
  width_shift_range = 0.1, height_shift_range = 0.1, horizontal_flip = true,
}
local augment_size = nnc.option("augment", 30000)
math.randomseed(nnc.option("index_seed", 1)) -- the same rows on every run
local idx = {}
for i = 1, augment_size do idx[i] = math.random(#train_X) end
local x_augmented = gen:flow(train_X[idx], { batch_size = augment_size, shuffle = false }):next()
local y_augmented = y_train[idx]
train_X = data.concat(train_X, x_augmented)
local train_y = data.concat(y_train, y_augmented)
print(string.format("training on %d images (%d augmented)", #train_X, augment_size))

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
local history = model:fit(train_X, train_y, {
  epochs = nnc.option("epochs", 500), batch_size = 32, validation_split = 0.25,
  callbacks = { nn.EarlyStopping { monitor = "val_loss", patience = 10 } },
})
local loss, acc = model:evaluate(test_X, y_test)
print(string.format("test loss: %.4f - test accuracy: %.4f", loss, acc))
