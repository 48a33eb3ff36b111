-- Seed 002's step loop, in Keras's custom-loop calls: train one batch at a
-- time, every `every` steps evaluate on the test set and print
-- "Step: N, Loss: ..., Accuracy: ...", stop once the test accuracy reaches
-- the target. Its model is the TF1 tutorial CNN the seed builds with
-- tf.nn.conv2d (SAME) and max_pool 2x2 stride 2: conv 32 - pool - conv 64 -
-- pool - dense 1024 with dropout 0.5 - 10, trained with Adam at 1e-4.
--
--   nnc models/seed002_loop.lua [--dataset mnist|fashion_mnist] [--every 500]
--                               [--target 0.99] [--steps 20000] [--batch 50]
local dataset = nnc.option("dataset", "mnist")
local every = tonumber(nnc.option("every", 500))
local target = tonumber(nnc.option("target", 0.99))
local max_steps = tonumber(nnc.option("steps", 20000))
local batch = tonumber(nnc.option("batch", 50))

local train, test = data[dataset]()

local model = nn.Sequential {
  nn.Conv2D { 32, 5, padding = "same", activation = "relu", input_shape = { 28, 28, 1 } },
  nn.MaxPool2D { 2 },
  nn.Conv2D { 64, 5, padding = "same", activation = "relu" },
  nn.MaxPool2D { 2 },
  nn.Flatten(),
  nn.Dense { 1024, activation = "relu" },
  nn.Dropout(0.5),
  nn.Dense { 10, activation = "softmax" },
}
model:compile { optimizer = nn.Adam { learning_rate = 1e-4 }, loss = "sparse_categorical_crossentropy",
  metrics = { "accuracy" } }

-- Batches walk the training set in order and wrap around, as the seed's
-- next_batch does over an epoch.
local rows = #train.x
local batches = rows // batch
for step = 1, max_steps do
  local first = ((step - 1) % batches) * batch + 1
  model:train_on_batch(train.x:slice(first, first + batch - 1), train.y:slice(first, first + batch - 1))
  if step % every == 0 then
    local loss, accuracy = model:test_on_batch(test.x, test.y)
    print(string.format("Step: %d, Loss: %.4f, Accuracy: %.4f", step, loss, accuracy))
    if accuracy >= target then break end
  end
end
