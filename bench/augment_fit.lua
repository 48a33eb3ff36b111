-- fit on an augmenting flow against fit on arrays: time per step of
-- models/cnn.lua's network, the two runs alternated and the median kept.
--   nnc bench/augment_fit.lua [--steps 200] [--rounds 3] [--workers 1]
-- Ends with `AUGMENT_FIT <arrays ms/step> <flow ms/step> <ratio>`; the
-- augmentation alone (it:next() in the script's thread) is printed too, and
-- the processor time per step of both (os.clock, all threads): on a machine
-- with no idle core the worker's time cannot hide behind the step, and the
-- processor-time ratio shows what the augmentation costs.
local steps, rounds = nnc.option("steps", 200), nnc.option("rounds", 3)
local workers = nnc.option("workers", 1)
local x_train, y_train = datasets.fashion_mnist.load_data()
local n = steps * 32
local x = (x_train:slice(1, n) / 255.0):reshape(-1, 28, 28, 1)
local y = y_train:slice(1, n)

-- models/cnn.lua's network.
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

-- Seed 001's augmentation.
local gen = data.ImageDataGenerator { rotation_range = 10, zoom_range = 0.1, shear_range = 0.5,
  width_shift_range = 0.1, height_shift_range = 0.1, horizontal_flip = true }
local it = gen:flow(x, y, { batch_size = 32, seed = 1 })

local function arrays() model:fit(x, y, { epochs = 1, batch_size = 32, verbose = 0 }) end
local function flow() model:fit(it, { epochs = 1, steps_per_epoch = steps, workers = workers, verbose = 0 }) end
local function per_step(f)
  local t0, c0 = nnc.clock(), os.clock()
  f()
  return (nnc.clock() - t0) / steps * 1000, (os.clock() - c0) / steps * 1000
end
local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

arrays() -- compiles the graphs and warms the caches
flow()
local a, f, ca, cf = {}, {}, {}, {}
for r = 1, rounds do
  a[r], ca[r] = per_step(arrays)
  f[r], cf[r] = per_step(flow)
end
local probe = gen:flow(x, y, { batch_size = 32, seed = 2 })
local t0 = nnc.clock()
for _ = 1, steps do probe:next() end
local augment = (nnc.clock() - t0) / steps * 1000
local ma, mf = median(a), median(f)
print(string.format("processor time per step: arrays %.2f ms, flow %.2f ms (ratio %.3f)", median(ca), median(cf),
  median(cf) / median(ca)))
print(string.format("arrays %.2f ms/step, flow with augmentation (%d worker%s) %.2f ms/step; augmenting one batch alone %.2f ms",
  ma, workers, workers == 1 and "" or "s", mf, augment))
print(string.format("AUGMENT_FIT %.3f %.3f %.3f", ma, mf, mf / ma))
