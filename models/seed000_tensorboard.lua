-- Seed 000's MLPs with TensorBoard: Flatten(28,28) -> Dense 64 -> Dense 10
-- softmax, once with sigmoid and "sgd" (Keras: test 0.9297 after 20 epochs)
-- and once with relu and "adam" (0.9751), each run logging to its own folder
-- under logs/ so TensorBoard draws the two runs' curves side by side:
--
--   nnc models/seed000_tensorboard.lua [--dataset mnist|fashion_mnist] [--epochs 20]
--   tensorboard --logdir logs
--
-- The seed also passes write_images=True; nnc does not write weight images,
-- so that option is left out (nnc refuses it rather than ignore it).
local dataset = nnc.option("dataset", "mnist")
local train, test = data[dataset]()
local epochs = nnc.option("epochs", 20)

local function mlp(activation, optimizer, run)
  local model = nn.Sequential {
    nn.Flatten { input_shape = { 28, 28 } },
    nn.Dense { 64, activation = activation },
    nn.Dense { 10, activation = "softmax" },
  }
  model:compile { optimizer = optimizer, loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
  model:summary()
  model:fit(train.x:reshape { #train.x, 28, 28 }, train.y, {
    epochs = epochs, validation_data = { test.x:reshape { #test.x, 28, 28 }, test.y },
    callbacks = { nn.TensorBoard { log_dir = "logs/" .. run, histogram_freq = 1, write_graph = true } },
  })
  local loss, acc = model:evaluate(test.x:reshape { #test.x, 28, 28 }, test.y, { verbose = 2 })
  print(string.format("%s: test loss %.4f - test accuracy %.4f", run, loss, acc))
end

mlp("sigmoid", "sgd", "mlp1_sigmoid_sgd")
mlp("relu", "adam", "mlp2_relu_adam")
