-- The benchmark models, as models/vgg_fashion.lua, models/mlp.lua and
-- models/cnn.lua build them: a table of constructors by name, for the
-- scripts in bench/ (dofile'd, so they build fresh layers each call).
return {
  vgg = function()
    return nn.Sequential {
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
  end,
  mlp = function()
    return nn.Sequential {
      nn.Flatten { input_shape = { 28, 28, 1 } },
      nn.Dense { 128, activation = "relu" },
      nn.Dense { 10, activation = "softmax" },
    }
  end,
  cnn = function()
    return nn.Sequential {
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
  end,
}
