-- A custom loop of train_on_batch against fit, per step, on models/cnn.lua's
-- model: the same compiled train graph either way, so the loop should cost
-- no more than fit plus a Lua call per step.
--
--   nnc bench/train_on_batch.lua [--steps 200] [--reps 5] [--backend cpu]
--
-- Each repeat times one fit epoch over steps*32 rows (shuffle off, verbose 0)
-- and a loop of `steps` train_on_batch calls over the same rows, in turn and
-- in alternating order so that the machine's drift hits both; the loop slices
-- its batches inside
-- the timed loop, as a user's loop does. Prints the median ms/step of each
-- and their ratio.
local steps = tonumber(nnc.option("steps", 200))
local reps = tonumber(nnc.option("reps", 5))
local batch = 32

local train = data.fashion_mnist()
local x, y = train.x:slice(1, steps * batch), train.y:slice(1, steps * batch)

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local model = dofile(here .. "models.lua").cnn()
model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }

local function timed_fit()
  local t0 = nnc.clock()
  model:fit(x, y, { epochs = 1, batch_size = batch, shuffle = false, verbose = 0 })
  return (nnc.clock() - t0) / steps
end

local function timed_loop()
  local t0 = nnc.clock()
  for s = 0, steps - 1 do
    model:train_on_batch(x:slice(s * batch + 1, (s + 1) * batch), y:slice(s * batch + 1, (s + 1) * batch))
  end
  return (nnc.clock() - t0) / steps
end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

timed_fit() -- compiles the train graph
local fit_times, loop_times = {}, {}
for r = 1, reps do
  -- Which runs first alternates: on a busy machine the first of a pair fares differently.
  if r % 2 == 1 then
    fit_times[r], loop_times[r] = timed_fit(), timed_loop()
  else
    loop_times[r], fit_times[r] = timed_loop(), timed_fit()
  end
end
local f, l = median(fit_times), median(loop_times)
print(string.format("fit: %.3f ms/step  train_on_batch loop: %.3f ms/step  loop/fit: %.3f  (%d steps, %d repeats)",
  f * 1e3, l * 1e3, l / f, steps, reps))
