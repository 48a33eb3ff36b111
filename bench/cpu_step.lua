-- Training throughput: times train steps (forward, backward and the Adam
-- update) of the benchmark models at a fixed batch size, as
-- /work/shared/bench/torch_ref/bench_torch.py does for PyTorch.
--
--   nnc bench/cpu_step.lua --model vgg --batch 32 --sec 5 [--backend cpu] [--reps 3]
--
-- Models: vgg (models/vgg_fashion.lua), mlp (models/mlp.lua), cnn
-- (models/cnn.lua). Each repeat is one model:fit epoch over enough rows for
-- about --sec seconds (verbose 0, no validation), after a warm-up epoch that
-- compiles the graph; the figure is the median over repeats, in images/s.
-- The models, as models/*.lua build them (bench/models.lua).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local models = dofile(here .. "models.lua")

local name = nnc.option("model", "vgg")
local batch = nnc.option("batch", 32)
local sec = nnc.option("sec", 3)
local reps = nnc.option("reps", 3)
if not models[name] then error("--model must be vgg, mlp or cnn, got " .. tostring(name)) end

local train = data.fashion_mnist()
local model = models[name]()
model:compile { optimizer = nn.Adam(), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }

local function epoch(rows)
  local t0 = nnc.clock()
  model:fit(train.x:slice(1, rows), train.y:slice(1, rows), { epochs = 1, batch_size = batch, verbose = 0 })
  return nnc.clock() - t0
end

-- Warm up (compiles the train step), then size the repeats to about --sec.
local rows = batch * 4
local t = epoch(rows)
while t < 0.5 and rows * 2 <= 60000 do
  rows = rows * 2
  t = epoch(rows)
end
rows = math.min(60000 // batch * batch, math.max(batch, math.floor(rows * sec / t) // batch * batch))

local rates = {}
for r = 1, reps do rates[r] = rows / epoch(rows) end
table.sort(rates)
print(string.format("%s train bs=%d: %.1f img/s (min %.1f max %.1f, %d steps/rep)", name, batch,
  rates[(reps + 1) // 2], rates[1], rates[reps], rows // batch))
