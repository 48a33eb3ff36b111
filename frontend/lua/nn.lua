-- The `nn` module: Keras's layers, Sequential and functional models, and
-- compile/summary/predict, written over the thin `core` binding. A layer is
-- a table of options checked against its spec; calling it on a symbolic
-- tensor adds its nodes to that tensor's graph. To add a layer, add a spec
-- to `layer_specs` with a build function.
local core = ...
local nn = {}

-- Under mpirun every rank runs the script; rank 0 alone writes files
-- (weights, models, checkpoints, logs, event files, pictures), so every
-- other rank's writers do nothing.
if core.rank ~= 0 then
  local silent = setmetatable({}, { __index = function() return function() end end })
  for _, writer in ipairs { "save_weights", "save_h5", "write_file", "plot_curves", "plot_images" } do
    core[writer] = function() end
  end
  core.tb_open = function() return silent end
end

---------------------------------------------------------------------------
-- Errors: every message names the script line, and the layer when known.

local function here()
  local file, line = core.where()
  return file and (file .. ":" .. line) or "?"
end

local function fail(fmt, ...)
  error(here() .. ": " .. string.format(fmt, ...), 0)
end

-- A value as a message shows it: a string quoted and called one, so that
-- "32" given where 32 goes is told apart from the number.
local function show(v)
  if v == core.json_null then return "null" end
  if type(v) == "string" then return string.format("string %q", v) end
  if type(v) == "table" or type(v) == "function" then return "a " .. type(v) end
  return tostring(v)
end

local function hint(name, choices)
  local best = core.closest(tostring(name), choices)
  return best and ("; did you mean '" .. best .. "'?") or ""
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Every constructor and call that takes options says the same about one it
-- does not know: the closest valid name, then all of them.
local function unknown_keyword(what, k, valid)
  fail("%s got an unknown keyword '%s'%s (valid: %s)", what, tostring(k), hint(k, valid), table.concat(valid, ", "))
end

local function where_of(layer)
  return string.format("%s (%s) at %s:%d", layer.name, layer.class, layer.file, layer.line)
end

local function layer_fail(layer, fmt, ...)
  error(where_of(layer) .. ": " .. string.format(fmt, ...), 0)
end

local function shape_str(shape)
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = d < 0 and "None" or tostring(d) end
  if #parts == 1 then return "(" .. parts[1] .. ",)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end

local function type_str(shape)
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = d < 0 and "?" or tostring(d) end
  return "f32[" .. table.concat(parts, ",") .. "]"
end

---------------------------------------------------------------------------
-- Keras names: one counter per base name for the whole script, so layers
-- are conv2d, conv2d_1, ... and inputs input_1, input_2, ... as in Keras.

local name_counts = {}

local function unique_name(base, one_based)
  local n = name_counts[base]
  if one_based then
    n = (n or 0) + 1
    name_counts[base] = n
    return base .. "_" .. n
  end
  name_counts[base] = (n or 0) + 1
  return n and (base .. "_" .. n) or base
end

---------------------------------------------------------------------------
-- Option checking shared by layers, optimizers and callbacks.

-- The activation names nnc implements, each the op it builds (linear: none).
-- Checking, saving and loading all read this one table.
local activations = { relu = "relu", sigmoid = "sigmoid", tanh = "tanh", softmax = "softmax", leaky_relu = "leaky_relu",
  elu = "elu", selu = "selu", linear = false }
-- Keras's activation function leaky_relu has slope 0.2; the LeakyReLU layer's default is 0.3.
local activation_attrs = { leaky_relu = { alpha = 0.2 }, elu = { alpha = 1.0 } }
local activation_names = sorted_keys(activations)
local initializer_names = {
  "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
  "random_normal", "random_uniform", "zeros", "ones", "constant",
}

local function check_size_pair(what, v, allow_nil)
  if v == nil and allow_nil then return nil end
  local pair = type(v) == "table" and { v[1], v[2] } or { v, v }
  for i = 1, 2 do
    local d = pair[i]
    if math.type(d) ~= "integer" then
      fail("%s must be an integer or a pair of integers, got %s", what, show(d))
    end
    if d < 1 then fail("%s must be positive, got %d", what, d) end
  end
  return pair
end

local function check_choice(what, v, choices)
  for _, c in ipairs(choices) do if v == c then return v end end
  fail("unknown %s '%s'%s (valid: %s)", what, tostring(v), hint(v, choices), table.concat(choices, ", "))
end

local function check_activation(v)
  if v == nil then return nil end
  if activations[v] == nil then
    fail("unknown activation '%s'%s (valid: %s)", tostring(v), hint(v, activation_names),
      table.concat(activation_names, ", "))
  end
  return v
end

-- The options each initializer takes, as Keras names them; the others take none.
local initializer_options = { random_normal = { mean = true, stddev = true },
  random_uniform = { minval = true, maxval = true }, constant = { value = true } }

-- An initializer is a name or a table {"random_normal", mean=, stddev=}.
local function check_initializer(v)
  local spec = type(v) == "table" and v or { v }
  local kind = spec[1] or spec.kind
  check_choice("initializer", kind, initializer_names)
  local takes = initializer_options[kind] or {}
  local out = { kind = kind }
  for k, x in pairs(spec) do
    if k ~= 1 and k ~= "kind" then
      if not takes[k] then
        local names = sorted_keys(takes)
        fail("initializer '%s' has no option '%s' (it takes %s)", kind, tostring(k),
          #names > 0 and table.concat(names, ", ") or "none")
      end
      if type(x) ~= "number" then fail("initializer '%s': %s must be a number, got %s", kind, k, show(x)) end
      out[k] = x
    end
  end
  return out
end

nn.initializers = {}
for _, name in ipairs(initializer_names) do
  nn.initializers[name] = function(opts)
    local spec = { name }
    for k, v in pairs(opts or {}) do spec[k] = v end
    return spec
  end
end

-- Turns a constructor's argument (table, number or string) into named
-- options: positional entries take the spec's positional names in order.
local function read_options(spec, arg)
  local given = type(arg) == "table" and arg or { arg }
  local opts = {}
  local n = 0
  for k in pairs(given) do
    if math.type(k) == "integer" then n = math.max(n, k) end
  end
  if n > #spec.positional and not spec.rest then
    fail("%s takes at most %d positional argument(s), got %d", spec.class, #spec.positional, n)
  end
  for i = 1, math.min(n, #spec.positional) do opts[spec.positional[i]] = given[i] end
  if spec.rest and n > 0 then opts[spec.rest] = spec.collect_rest(given, n) end
  local valid = sorted_keys(spec.options)
  for k, v in pairs(given) do
    if math.type(k) ~= "integer" then
      if spec.options[k] == nil then
        unknown_keyword(spec.class, k, valid)
      end
      if opts[k] ~= nil then fail("%s got '%s' both by position and by name", spec.class, k) end
      opts[k] = v
    end
  end
  for k, default in pairs(spec.options) do
    if opts[k] == nil and default ~= nn.REQUIRED and default ~= nn.NONE then opts[k] = default end
  end
  for k, default in pairs(spec.options) do
    if default == nn.REQUIRED and opts[k] == nil then fail("%s needs '%s'", spec.class, k) end
  end
  return opts
end

nn.REQUIRED = setmetatable({}, { __name = "required" })
nn.NONE = setmetatable({}, { __name = "none" })

---------------------------------------------------------------------------
-- Symbolic tensors: a graph (with its weight store) and a node id.

local Symbolic = {}
Symbolic.__index = Symbolic

local function new_state()
  return { graph = core.graph(), store = core.store(), seed = core.seed, layers = {}, pending_init = {} }
end

local function symbolic(state, id)
  local _, shape = state.graph:type(id)
  return setmetatable({ state = state, id = id, shape = shape }, Symbolic)
end

local function input_tensor(state, name, shape, file, line)
  local dims = { -1 }
  for i, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 1 then
      local given = {}
      for j, g in ipairs(shape) do given[j] = show(g) end
      error(string.format("%s:%d: input shape {%s} has a zero, negative or non-integer size at axis %d: %s",
        file, line, table.concat(given, ", "), i, show(d)), 0)
    end
    dims[#dims + 1] = d
  end
  state.graph:set_loc(name, "InputLayer", file, line)
  return symbolic(state, state.graph:leaf("input", name, dims))
end

---------------------------------------------------------------------------
-- Layers.

local Layer = {}
Layer.__index = Layer

-- Adds an op node stamped with this layer's name and script line.
function Layer:op(state, name, srcs, attrs)
  state.graph:set_loc(self.name, self.class, self.file, self.line)
  return state.graph:op(name, srcs, attrs)
end

-- A weight of this layer. `kind` "state" makes one that never trains
-- (BatchNormalization's moving statistics); "param" ones train unless the
-- layer's trainable is false when the model is compiled.
function Layer:param(state, suffix, shape, init, fan_in, fan_out, kind)
  local name = self.name .. "/" .. suffix
  -- A layer called again (shared, or added twice) reuses its weights, so
  -- the new input must give them the shape the first call did.
  self.weight_shapes = self.weight_shapes or {}
  local first = self.weight_shapes[name]
  if first and type_str(first) ~= type_str(shape) then
    layer_fail(self, "is called again on an input that needs %s %s, but its first call made it %s (a shared layer keeps its weights)",
      suffix, type_str(shape), type_str(first))
  end
  state.graph:set_loc(self.name, self.class, self.file, self.line)
  local id = state.graph:leaf(kind or "param", name, shape)
  -- Each model's store gets the weight (a layer may serve two models).
  local spec = {}
  for k, v in pairs(init) do spec[k] = v end
  spec.fan_in, spec.fan_out = fan_in, fan_out
  -- Filled when the whole layer is built (Layer:__call), so a shape error in
  -- the layer's ops is reported before gigabytes of initial values are drawn.
  state.pending_init[#state.pending_init + 1] = { name, shape, spec }
  if first then return id end
  self.weight_shapes[name] = shape
  self.weight_names = self.weight_names or {}
  self.weight_names[#self.weight_names + 1] = name
  local count = 1
  for _, d in ipairs(shape) do count = count * d end
  self.params = (self.params or 0) + count
  self.weights = self.weights or {}
  self.weights[#self.weights + 1] = { id = id, count = count, trains = kind ~= "state" }
  return id
end

-- This layer's parameter counts as Keras's summary splits them.
function Layer:param_counts()
  local trainable, frozen = 0, 0
  for _, w in ipairs(self.weights or {}) do
    if w.trains and self.trainable ~= false then trainable = trainable + w.count else frozen = frozen + w.count end
  end
  return trainable, frozen
end

function Layer:activate(state, id)
  local op = self.opts.activation and activations[self.opts.activation]
  if op then return self:op(state, op, { id }, activation_attrs[self.opts.activation]) end
  return id
end

-- Calling a layer on a symbolic tensor builds its nodes.
function Layer:__call(x)
  if getmetatable(x) ~= Symbolic then
    layer_fail(self, "a layer is called on a symbolic tensor (from nn.Input or another layer), got a %s",
      type(x))
  end
  x.state.pending_init = {}
  local id = self.spec.build(self, x.state, x)
  for _, p in ipairs(x.state.pending_init) do x.state.store:init(p[1], p[2], p[3]) end
  x.state.pending_init = {}
  local out = symbolic(x.state, id)
  -- Keras's summary says "multiple" for a layer whose calls gave different shapes.
  if self.output_shape and shape_str(self.output_shape) ~= shape_str(out.shape) then self.multiple = true end
  self.output_shape = out.shape
  self.params = self.params or 0
  -- Keras's node graph, for model_config: each call's input layer and node.
  self.inbound = self.inbound or {}
  self.inbound[#self.inbound + 1] = { x.layer_name, x.node_index or 0 }
  out.layer_name, out.node_index = self.name, #self.inbound - 1
  local called = x.state.layers
  if not called[self] then called[self] = true; called[#called + 1] = self end
  return out
end

local function conv_fans(kh, kw, cin, cout)
  return kh * kw * cin, kh * kw * cout
end

local function build_dense(self, state, x)
  local o = self.opts
  if #x.shape < 2 then layer_fail(self, "expects input with a feature axis, got %s", type_str(x.shape)) end
  local fan_in = x.shape[#x.shape]
  local k = self:param(state, "kernel", { fan_in, o.units }, o.kernel_initializer, fan_in, o.units)
  local y = self:op(state, "matmul", { x.id, k })
  if o.use_bias then
    local b = self:param(state, "bias", { o.units }, o.bias_initializer, fan_in, o.units)
    y = self:op(state, "bias_add", { y, b })
  end
  return self:activate(state, y)
end

local function build_conv2d(self, state, x)
  local o = self.opts
  local kh, kw = o.kernel_size[1], o.kernel_size[2]
  local cin = x.shape[#x.shape]
  if #x.shape ~= 4 then
    -- Build nothing: conv2d's own shape check gives the message.
    cin = 1
  end
  local fan_in, fan_out = conv_fans(kh, kw, cin, o.filters)
  local k = self:param(state, "kernel", { kh, kw, cin, o.filters }, o.kernel_initializer, fan_in, fan_out)
  local y = self:op(state, "conv2d", { x.id, k }, { stride = o.strides, pad = o.padding })
  if o.use_bias then
    local b = self:param(state, "bias", { o.filters }, o.bias_initializer, fan_in, fan_out)
    y = self:op(state, "bias_add", { y, b })
  end
  return self:activate(state, y)
end

local function build_pool(op)
  return function(self, state, x)
    local o = self.opts
    return self:op(state, op, { x.id }, { window = o.pool_size, stride = o.strides or o.pool_size, pad = o.padding })
  end
end

local function build_flatten(self, state, x)
  return self:op(state, "reshape", { x.id }, { shape = { -1 } })
end

local function build_reshape(self, state, x)
  return self:op(state, "reshape", { x.id }, { shape = self.opts.target_shape })
end

local function build_dropout(self, state, x)
  return self:op(state, "dropout", { x.id }, { rate = self.opts.rate, stream = core.stream_of(self.name) })
end

-- Keras's BatchNormalization over the last axis: gamma and beta train,
-- moving_mean and moving_variance are states (in Keras's weight order).
-- scale=false makes no gamma and center=false no beta: the constants 1 and 0
-- take their place, as in Keras's fused kernel call. The
-- graph holds the inference form; passes/batch_norm.c gives the train step
-- the training form and the moving-statistics updates.
local function build_batch_norm(self, state, x)
  local o = self.opts
  local rank = #x.shape
  if rank < 2 then layer_fail(self, "expects input with a feature axis, got %s", type_str(x.shape)) end
  if o.axis ~= -1 and o.axis ~= rank - 1 then
    layer_fail(self, "normalizes the last axis only (axis=-1 or %d), got axis=%s", rank - 1, show(o.axis))
  end
  local c = x.shape[rank]
  local gamma = o.scale and self:param(state, "gamma", { c }, o.gamma_initializer)
  local beta = o.center and self:param(state, "beta", { c }, o.beta_initializer)
  local mean = self:param(state, "moving_mean", { c }, o.moving_mean_initializer, nil, nil, "state")
  local var = self:param(state, "moving_variance", { c }, o.moving_variance_initializer, nil, nil, "state")
  gamma = gamma or self:op(state, "fill", { mean }, { alpha = 1 })
  beta = beta or self:op(state, "fill", { mean }, { alpha = 0 })
  local table = self:op(state, "bn_fold", { mean, var, gamma, beta }, { eps = o.epsilon, alpha = o.momentum })
  return self:op(state, "scale_shift", { x.id, table })
end

local function build_activation(self, state, x)
  return self:activate(state, x.id)
end

local function build_fixed(op)
  return function(self, state, x) return self:op(state, op, { x.id }) end
end

local common = { name = nn.NONE, input_shape = nn.NONE, trainable = true }

local function with_common(options)
  for k, v in pairs(common) do options[k] = v end
  return options
end

local padding_names = { "valid", "same" }

local layer_specs = {
  Dense = {
    base = "dense", positional = { "units" }, build = build_dense,
    options = with_common { units = nn.REQUIRED, activation = nn.NONE, use_bias = true,
      kernel_initializer = "glorot_uniform", bias_initializer = "zeros", input_dim = nn.NONE },
  },
  Conv2D = {
    base = "conv2d", positional = { "filters", "kernel_size" }, build = build_conv2d,
    options = with_common { filters = nn.REQUIRED, kernel_size = nn.REQUIRED, strides = 1,
      padding = "valid", activation = nn.NONE, use_bias = true,
      kernel_initializer = "glorot_uniform", bias_initializer = "zeros" },
  },
  MaxPooling2D = {
    base = "max_pooling2d", positional = { "pool_size" }, build = build_pool("max_pool"),
    options = with_common { pool_size = 2, strides = nn.NONE, padding = "valid" },
  },
  AveragePooling2D = {
    base = "average_pooling2d", positional = { "pool_size" }, build = build_pool("avg_pool"),
    options = with_common { pool_size = 2, strides = nn.NONE, padding = "valid" },
  },
  Flatten = { base = "flatten", positional = {}, build = build_flatten, options = with_common {} },
  Reshape = {
    base = "reshape", positional = {}, rest = "target_shape", build = build_reshape,
    collect_rest = function(given, n)
      if n == 1 and type(given[1]) == "table" then return given[1] end
      local t = {}
      for i = 1, n do t[i] = given[i] end
      return t
    end,
    options = with_common { target_shape = nn.REQUIRED },
  },
  Dropout = {
    base = "dropout", positional = { "rate" }, build = build_dropout,
    options = with_common { rate = nn.REQUIRED, seed = nn.NONE },
  },
  Activation = {
    base = "activation", positional = { "activation" }, build = build_activation,
    options = with_common { activation = nn.REQUIRED },
  },
  ReLU = { base = "re_lu", positional = {}, build = build_fixed("relu"), options = with_common {} },
  LeakyReLU = {
    base = "leaky_re_lu", positional = { "alpha" },
    build = function(self, state, x) return self:op(state, "leaky_relu", { x.id }, { alpha = self.opts.alpha }) end,
    options = with_common { alpha = 0.3 },
  },
  ELU = {
    base = "elu", positional = { "alpha" },
    build = function(self, state, x) return self:op(state, "elu", { x.id }, { alpha = self.opts.alpha }) end,
    options = with_common { alpha = 1.0 },
  },
  Softmax = { base = "softmax", positional = {}, build = build_fixed("softmax"), options = with_common {} },
  BatchNormalization = {
    base = "batch_normalization", positional = {}, build = build_batch_norm,
    options = with_common { axis = -1, momentum = 0.99, epsilon = 1e-3, center = true, scale = true,
      beta_initializer = "zeros", gamma_initializer = "ones", moving_mean_initializer = "zeros",
      moving_variance_initializer = "ones" },
  },
}
local layer_aliases = { MaxPool2D = "MaxPooling2D", AvgPool2D = "AveragePooling2D" }

-- Checks the options a layer reads, so errors point at the constructor line.
local function check_layer_options(class, o)
  if o.units ~= nil and (math.type(o.units) ~= "integer" or o.units < 1) then
    fail("%s: units must be a positive integer, got %s", class, show(o.units))
  end
  if o.filters ~= nil and (math.type(o.filters) ~= "integer" or o.filters < 1) then
    fail("%s: filters must be a positive integer, got %s", class, show(o.filters))
  end
  if o.kernel_size ~= nil then o.kernel_size = check_size_pair(class .. " kernel_size", o.kernel_size) end
  if o.pool_size ~= nil then o.pool_size = check_size_pair(class .. " pool_size", o.pool_size) end
  if o.strides ~= nil then o.strides = check_size_pair(class .. " strides", o.strides) end
  if o.padding ~= nil then check_choice("padding", o.padding, padding_names) end
  if o.activation ~= nil then check_activation(o.activation) end
  if o.kernel_initializer ~= nil then o.kernel_initializer = check_initializer(o.kernel_initializer) end
  if o.bias_initializer ~= nil then o.bias_initializer = check_initializer(o.bias_initializer) end
  for _, k in ipairs { "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer" } do
    if o[k] ~= nil then o[k] = check_initializer(o[k]) end
  end
  if o.momentum ~= nil and class == "BatchNormalization" and (type(o.momentum) ~= "number" or o.momentum < 0 or o.momentum > 1) then
    fail("%s: momentum must be a number in [0, 1], got %s", class, show(o.momentum))
  end
  if o.epsilon ~= nil and (type(o.epsilon) ~= "number" or o.epsilon <= 0) then
    fail("%s: epsilon must be a positive number, got %s", class, show(o.epsilon))
  end
  for _, k in ipairs { "center", "scale" } do
    if o[k] ~= nil and type(o[k]) ~= "boolean" then fail("%s: %s must be true or false, got %s", class, k, tostring(o[k])) end
  end
  if o.trainable ~= nil and type(o.trainable) ~= "boolean" then
    fail("%s: trainable must be true or false, got %s", class, show(o.trainable))
  end
  if o.alpha ~= nil and (type(o.alpha) ~= "number" or not (o.alpha >= 0)) then
    fail("%s: alpha must be a number >= 0, got %s", class, show(o.alpha))
  end
  if o.rate ~= nil and (type(o.rate) ~= "number" or o.rate < 0 or o.rate >= 1) then
    fail("%s: rate must be a number in [0, 1), got %s", class, show(o.rate))
  end
  if o.input_dim ~= nil and o.input_shape == nil then o.input_shape = { o.input_dim } end
  if o.input_shape ~= nil and type(o.input_shape) ~= "table" then
    fail("%s: input_shape must be a table like {28, 28, 1}, got %s", class, show(o.input_shape))
  end
end

local function make_layer(class, spec, arg)
  local opts = read_options(spec, arg)
  check_layer_options(class, opts)
  local file, line = core.where()
  local name = opts.name or unique_name(spec.base)
  return setmetatable({ class = class, spec = spec, opts = opts, name = name, file = file or "?",
    line = line or 0, trainable = opts.trainable }, Layer)
end

for class, spec in pairs(layer_specs) do
  spec.class = class
  nn[class] = function(arg) return make_layer(class, spec, arg) end
end
for alias, class in pairs(layer_aliases) do nn[alias] = nn[class] end


---------------------------------------------------------------------------
-- Models.

local Model = {}
Model.__index = Model

function nn.Input(arg)
  local shape = type(arg) == "table" and (arg.shape or arg) or nil
  if type(shape) ~= "table" then fail("nn.Input takes a shape like {28, 28, 1}") end
  local file, line = core.where()
  local name = type(arg) == "table" and arg.name or unique_name("input", true)
  local dims = {}
  for i, d in ipairs(shape) do dims[i] = d end
  local x = input_tensor(new_state(), name, dims, file or "?", line or 0)
  x.input_layer = { name = name, class = "InputLayer", output_shape = x.shape, params = 0 }
  x.layer_name = name
  return x
end

local function new_model(kind, name)
  local file, line = core.where()
  return setmetatable({ kind = kind, name = name, layers = {}, file = file or "?", line = line or 0 }, Model)
end

function nn.Sequential(layers)
  if layers ~= nil and type(layers) ~= "table" then
    fail("nn.Sequential takes a list of layers like { nn.Dense { 10 } }, got %s", show(layers))
  end
  local model = new_model("Sequential", unique_name("sequential"))
  for _, layer in ipairs(layers or {}) do model:add(layer) end
  return model
end

function Model:add(layer)
  if getmetatable(layer) ~= Layer then fail("model:add takes a layer, got %s", type(layer)) end
  if self.kind ~= "Sequential" then fail("model:add is for Sequential models") end
  if #self.layers == 0 and layer.opts.input_shape then
    local state = new_state()
    self.state = state
    self.input_name = layer.name .. "_input"
    self.output = input_tensor(state, self.input_name, layer.opts.input_shape, layer.file, layer.line)
    self.output.layer_name = self.input_name
  end
  -- Added twice, a layer is one layer called twice with the same weights,
  -- as Keras has it: listed and counted once.
  local known = false
  for _, l in ipairs(self.layers) do known = known or l == layer end
  if not known then self.layers[#self.layers + 1] = layer end
  if self.output then self.output = layer(self.output) end
end

function nn.Model(arg)
  if type(arg) ~= "table" or getmetatable(arg.inputs) ~= Symbolic or getmetatable(arg.outputs) ~= Symbolic then
    fail("nn.Model takes { inputs = <nn.Input>, outputs = <tensor> }")
  end
  if arg.inputs.state ~= arg.outputs.state then fail("nn.Model: the outputs are not computed from these inputs") end
  local model = new_model("Functional", arg.name or unique_name("model"))
  model.state, model.output = arg.outputs.state, arg.outputs
  model.input_layer = arg.inputs.input_layer
  -- The layers in the order they were first called, as Keras lists them.
  model.layers = { model.input_layer }
  for _, layer in ipairs(model.state.layers) do model.layers[#model.layers + 1] = layer end
  return model
end

function Model:require_built()
  if not self.output then
    error(string.format("%s (%s) at %s:%d: the model has no input shape: give the first layer input_shape = {...} or start from nn.Input",
      self.name, self.kind, self.file, self.line), 0)
  end
  if not self.finalized then
    self.state.graph:output("output", self.output.id)
    self.finalized = true
  end
end

---------------------------------------------------------------------------
-- compile: optimizers, losses and metrics, checked by name.

local optimizer_specs = {
  sgd = { class = "SGD", positional = { "learning_rate" }, options = { learning_rate = 0.01, lr = nn.NONE, momentum = 0.0, nesterov = false } },
  adam = { class = "Adam", positional = { "learning_rate" }, options = { learning_rate = 0.001, lr = nn.NONE, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, amsgrad = false } },
  rmsprop = { class = "RMSprop", positional = { "learning_rate" }, options = { learning_rate = 0.001, lr = nn.NONE, rho = 0.9, momentum = 0.0, epsilon = 1e-7, centered = false } },
}
local optimizer_names = sorted_keys(optimizer_specs)

local function make_optimizer(kind, arg)
  local spec = optimizer_specs[kind]
  local o = read_options(spec, arg or {})
  if o.lr ~= nil then o.learning_rate, o.lr = o.lr, nil end
  for k, v in pairs(o) do
    if type(v) ~= type(spec.options[k] == nn.NONE and 0 or spec.options[k]) then
      fail("%s: %s must be a %s, got %s", spec.class, k, type(spec.options[k]), show(v))
    end
  end
  o.kind = kind
  return setmetatable(o, { __name = "optimizer" })
end

nn.SGD = function(arg) return make_optimizer("sgd", arg) end
nn.Adam = function(arg) return make_optimizer("adam", arg) end
nn.RMSprop = function(arg) return make_optimizer("rmsprop", arg) end

local loss_names = { "sparse_categorical_crossentropy", "categorical_crossentropy", "mse", "mean_squared_error" }
local metric_names = { "accuracy", "acc" }

local function check_optimizer(opt)
  if type(opt) == "string" then
    local kind = opt:lower()
    if not optimizer_specs[kind] then
      fail("unknown optimizer '%s'%s (valid: %s)", opt, hint(kind, optimizer_names), table.concat(optimizer_names, ", "))
    end
    return make_optimizer(kind)
  end
  if type(opt) ~= "table" or not opt.kind then fail("compile: optimizer must be a name or nn.Adam{...}, got %s", show(opt)) end
  return opt
end

-- model.optimizer as Keras has it: learning_rate (or lr) reads and sets the
-- rate the next step uses, which is how schedules change it.
local function optimizer_handle(store, opt)
  local function is_rate(k) return k == "learning_rate" or k == "lr" end
  return setmetatable({}, {
    __name = "optimizer",
    __index = function(_, k)
      if is_rate(k) then return store:learning_rate() end
      return opt[k]
    end,
    __newindex = function(_, k, v)
      if not is_rate(k) then fail("optimizer.%s cannot be changed after compile; only learning_rate can", tostring(k)) end
      if type(v) ~= "number" then fail("optimizer.learning_rate must be a number, got %s", type(v)) end
      store:learning_rate(v)
    end,
  })
end

function Model:compile(arg)
  if type(arg) ~= "table" then fail("model:compile takes a table { optimizer = ..., loss = ..., metrics = ... }") end
  local valid = { "optimizer", "loss", "metrics" }
  for k in pairs(arg) do
    if k ~= "optimizer" and k ~= "loss" and k ~= "metrics" then
      unknown_keyword("compile", k, valid)
    end
  end
  local optimizer = check_optimizer(arg.optimizer or "rmsprop")
  if arg.loss == nil then fail("compile needs a loss (valid: %s)", table.concat(loss_names, ", ")) end
  local loss = check_choice("loss", arg.loss, loss_names)
  if loss == "mean_squared_error" then loss = "mse" end
  -- Keras logs a metric under the name the user gave it: "acc" gives acc and val_acc.
  local metrics = {}
  if arg.metrics ~= nil and type(arg.metrics) ~= "table" then
    fail("compile: metrics is a list like { 'accuracy' }, got %s", show(arg.metrics))
  end
  for _, m in ipairs(arg.metrics or {}) do
    metrics[#metrics + 1] = check_choice("metric", m, metric_names)
    if #metrics > 1 then fail("compile: metrics names accuracy twice ('%s' and '%s')", metrics[1], m) end
  end
  self:require_built()
  -- trainable=false (given or set on the layer since) freezes the layer's params.
  for _, layer in ipairs(self.layers) do
    if layer.trainable == false then
      -- Such a layer's graph is the same frozen or not: nothing tells the
      -- train step to keep its inference form.
      if layer.class == "BatchNormalization" and not layer.opts.center and not layer.opts.scale then
        layer_fail(layer, "trainable=false with center=false and scale=false is not implemented by nnc (the layer " ..
          "has no weight to freeze)")
      end
      for _, w in ipairs(layer.weights or {}) do self.state.graph:freeze(w.id) end
    end
  end
  self.state.graph:compile("forward")
  self.compiled = { optimizer = optimizer, loss = loss, metrics = metrics }
  self.state.store:set_spec { loss = loss, accuracy = metrics[1] ~= nil, metric = metrics[1], optimizer = optimizer }
  self.optimizer = optimizer_handle(self.state.store, optimizer)
  nn._last_compiled = self
end

---------------------------------------------------------------------------
-- summary(): Keras 2's table, character for character.

local function thousands(n)
  local s = tostring(math.floor(n))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

-- Keras's print_row: each field is cut to its column and padded to the next stop.
local function summary_row(fields, stops)
  local line = ""
  for i, field in ipairs(fields) do
    if i > 1 then line = line:sub(1, -2) .. " " end
    line = (line .. field):sub(1, stops[i])
    line = line .. string.rep(" ", stops[i] - #line)
  end
  return line
end

function Model:summary_lines()
  self:require_built()
  local width, stops = 65, { 29, 55, 65 }
  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add('Model: "' .. self.name .. '"')
  add(string.rep("_", width))
  add(summary_row({ "Layer (type)", "Output Shape", "Param #" }, stops))
  add(string.rep("=", width))
  local trainable, frozen = self:param_counts()
  for i, layer in ipairs(self.layers) do
    local shape = layer.multiple and "multiple" or shape_str(layer.output_shape)
    if layer.class == "InputLayer" then shape = "[" .. shape .. "]" end
    add(summary_row({ layer.name .. " (" .. layer.class .. ")", shape, tostring(layer.params) }, stops))
    add(i == #self.layers and string.rep("=", width) or string.rep("_", width))
  end
  add("Total params: " .. thousands(trainable + frozen))
  add("Trainable params: " .. thousands(trainable))
  add("Non-trainable params: " .. thousands(frozen))
  add(string.rep("_", width))
  return lines
end

function Model:summary()
  print(table.concat(self:summary_lines(), "\n"))
end

-- The trainable and non-trainable counts, as Keras's summary splits them.
function Model:param_counts()
  self:require_built()
  local trainable, frozen = 0, 0
  for _, layer in ipairs(self.layers) do
    if layer.param_counts then
      local t, f = layer:param_counts()
      trainable, frozen = trainable + t, frozen + f
    end
  end
  return trainable, frozen
end

-- Keras's count_params(): every weight, trainable or not.
function Model:count_params()
  local trainable, frozen = self:param_counts()
  return trainable + frozen
end

---------------------------------------------------------------------------
-- Running.

local function check_keys(what, opts, valid)
  if type(opts) ~= "table" then
    fail("%s takes its options as a table like { %s = ... }, got %s", what, valid[1], show(opts))
  end
  for k in pairs(opts) do
    local ok = false
    for _, v in ipairs(valid) do if k == v then ok = true end end
    if not ok then unknown_keyword(what, k, valid) end
  end
end

-- x and y are tensors (or nested tables of numbers, read as tensors).
local function check_data(what, name, v)
  if type(v) ~= "userdata" and type(v) ~= "table" then fail("%s: %s must be a tensor, got %s", what, name, show(v)) end
end

local function require_compiled(self, what)
  self:require_built()
  if not self.compiled then fail("%s: compile the model first (model:compile { optimizer = ..., loss = ... })", what) end
end

local function check_batch_size(what, bs)
  if math.type(bs) ~= "integer" or bs < 1 then fail("%s: batch_size must be a positive integer, got %s", what, show(bs)) end
  return bs
end

-- A batch larger than the data is one batch of all of it, as in Keras (the
-- graphs are then built for that many rows, not for the asked size).
local function data_batch_size(x, bs)
  local rows = (type(x) == "userdata" or type(x) == "table") and #x or nil
  if math.type(rows) == "integer" and rows > 0 and rows < bs then return rows end
  return bs
end

function Model:predict(x, opts)
  self:require_built()
  check_data("predict", "x", x)
  opts = opts or {}
  check_keys("predict", opts, { "batch_size", "verbose" })
  if core.dry_run then return x end
  return core.predict(self.state.graph, self.state.store, x, check_batch_size("predict", opts.batch_size or 32))
end

-- Callbacks (frontend/lua/callbacks.lua): EarlyStopping and the other
-- Keras callbacks, and the dispatch fit runs them through.
local callbacks = core.require("callbacks")(nn, {
  fail = fail, hint = hint, read_options = read_options, check_choice = check_choice, unknown_keyword = unknown_keyword,
  show = show,
})
nn._callbacks = callbacks

local fit_keys = { "epochs", "batch_size", "validation_split", "validation_data", "shuffle", "callbacks", "verbose" }

-- The names fit logs: loss, the metric, and their val_ twins.
local function log_names(self, validation)
  local names = { "loss", self.compiled.metrics[1] }
  if validation then
    names[#names + 1] = "val_loss"
    if self.compiled.metrics[1] then names[#names + 1] = "val_" .. self.compiled.metrics[1] end
  end
  return names
end

local flow_fit_keys = { "epochs", "steps_per_epoch", "validation_data", "callbacks", "verbose", "workers",
  "max_queue_size" }

-- fit(iterator, {...}): batches from gen:flow(x, y), made by worker threads
-- while the train step runs (Keras's workers=1, max_queue_size=10).
local function fit_flow(self, it, opts)
  opts = opts or {}
  if type(opts) ~= "table" then fail("fit on an iterator takes fit(iterator, { epochs = ..., ... }), got %s", type(opts)) end
  for k in pairs(opts) do
    local ok = false
    for _, v in ipairs(flow_fit_keys) do if k == v then ok = true end end
    if not ok then
      if k == "batch_size" or k == "validation_split" or k == "shuffle" then
        fail("fit: %s cannot be used with an iterator; set it in gen:flow(x, y, {...})", k)
      end
      fail("fit got an unknown keyword '%s'%s", tostring(k), hint(k, flow_fit_keys))
    end
  end
  local args = { epochs = opts.epochs or 1, verbose = opts.verbose or 1, steps_per_epoch = opts.steps_per_epoch or #it,
    workers = opts.workers or 1, max_queue_size = opts.max_queue_size or 10, batch_size = it.batch_size }
  if math.type(args.epochs) ~= "integer" or args.epochs < 0 then fail("fit: epochs must be a non-negative integer, got %s", show(args.epochs)) end
  if math.type(args.steps_per_epoch) ~= "integer" or args.steps_per_epoch < 1 then
    fail("fit: steps_per_epoch must be a positive integer, got %s", show(args.steps_per_epoch))
  end
  if math.type(args.workers) ~= "integer" or args.workers < 0 then fail("fit: workers must be an integer >= 0, got %s", show(args.workers)) end
  if math.type(args.max_queue_size) ~= "integer" or args.max_queue_size < 1 then
    fail("fit: max_queue_size must be a positive integer, got %s", show(args.max_queue_size))
  end
  if opts.validation_data then
    local v = opts.validation_data
    args.validation_x, args.validation_y = v[1] or v.x, v[2] or v.y
  end
  local run = callbacks.prepare(self, opts.callbacks, {
    epochs = args.epochs, steps = args.steps_per_epoch, verbose = args.verbose,
    metrics = log_names(self, args.validation_x ~= nil) })
  if core.dry_run then
    if not (core.bench_mode or core.check_mode) then
      core.compile_graphs(self.state.graph, self.state.store, args.batch_size)
    end
    return run.history
  end
  core.fit_flow(self.state.graph, self.state.store, it, args, run.dispatch, run.wanted)
  self.history = run.history
  return run.history
end

function Model:fit(x, y, opts)
  require_compiled(self, "fit")
  if core.is_flow(x) then return fit_flow(self, x, y) end
  check_data("fit", "x", x)
  check_data("fit", "y", y)
  opts = opts or {}
  check_keys("fit", opts, fit_keys)
  local args = {
    epochs = opts.epochs or 1, batch_size = data_batch_size(x, check_batch_size("fit", opts.batch_size or 32)),
    validation_split = opts.validation_split or 0, shuffle = opts.shuffle ~= false, verbose = opts.verbose or 1,
  }
  if math.type(args.epochs) ~= "integer" or args.epochs < 0 then fail("fit: epochs must be a non-negative integer, got %s", show(args.epochs)) end
  if opts.validation_data then
    local v = opts.validation_data
    args.validation_x, args.validation_y = v[1] or v.x, v[2] or v.y
  end
  local validation = args.validation_x ~= nil or args.validation_split > 0
  local steps = (math.type(#x) == "integer" and #x > 0) and
      math.ceil(#x * (1 - args.validation_split) / args.batch_size) or nil
  local names = log_names(self, validation)
  local run = callbacks.prepare(self, opts.callbacks, { epochs = args.epochs, steps = steps, verbose = args.verbose,
    metrics = names, batch_size = args.batch_size })
  if core.dry_run then
    for _, name in ipairs(names) do run.history[name] = {} end
    if not (core.bench_mode or core.check_mode) then
      core.compile_graphs(self.state.graph, self.state.store, args.batch_size)
    end
    -- nnc check trains on the script's own data when it has some.
    self.check_data = { x = x, y = y }
    return run.history
  end
  core.fit(self.state.graph, self.state.store, x, y, args, run.dispatch, run.wanted)
  self.history = run.history
  return run.history
end

-- Keras's custom-loop calls: one step on one batch with fit's compiled
-- graphs; loss, and the metric when compiled with one.
function Model:train_on_batch(x, y)
  require_compiled(self, "train_on_batch")
  check_data("train_on_batch", "x", x)
  check_data("train_on_batch", "y", y)
  if core.dry_run then return 0, 0 end
  return core.train_on_batch(self.state.graph, self.state.store, x, y)
end

function Model:test_on_batch(x, y)
  require_compiled(self, "test_on_batch")
  check_data("test_on_batch", "x", x)
  check_data("test_on_batch", "y", y)
  if core.dry_run then return 0, 0 end
  return core.test_on_batch(self.state.graph, self.state.store, x, y)
end

function Model:predict_on_batch(x)
  self:require_built()
  check_data("predict_on_batch", "x", x)
  if core.dry_run then return x end
  return core.predict(self.state.graph, self.state.store, x, math.max(#x, 1))
end

function Model:evaluate(x, y, opts)
  require_compiled(self, "evaluate")
  check_data("evaluate", "x", x)
  check_data("evaluate", "y", y)
  opts = opts or {}
  check_keys("evaluate", opts, { "batch_size", "verbose" })
  if core.dry_run then return 0, 0 end
  return core.evaluate(self.state.graph, self.state.store, x, y, check_batch_size("evaluate", opts.batch_size or 32),
    opts.verbose or 1)
end

-- One weight by its name ("conv2d/kernel"), as a copy; set_weight writes one.
function Model:get_weight(name)
  self:require_built()
  return self.state.store:get(name)
end

function Model:set_weight(name, t)
  self:require_built()
  self.state.store:set(name, t)
end

-- Every weight in Keras's order: layer by layer, each layer's in the order
-- it made them (kernel, bias).
function Model:weight_names()
  self:require_built()
  local names = {}
  for _, layer in ipairs(self.layers) do
    for _, name in ipairs(layer.weight_names or {}) do names[#names + 1] = name end
  end
  return names
end

function Model:get_weights()
  local out = {}
  for i, name in ipairs(self:weight_names()) do out[i] = self.state.store:get(name) end
  return out
end

function Model:set_weights(list)
  local names = self:weight_names()
  if type(list) ~= "table" or #list ~= #names then
    fail("set_weights takes a list of %d tensors (as get_weights returns), got %s", #names,
      type(list) == "table" and (#list .. " entries") or type(list))
  end
  for i, name in ipairs(names) do self.state.store:set(name, list[i]) end
end

-- The file format by extension: Keras's HDF5 or safetensors. Anything else
-- is an error, as Keras 2 would write a TensorFlow checkpoint there.
local function weights_format(what, path)
  if type(path) ~= "string" then fail("%s takes a file path", what) end
  if path:match("%.safetensors$") then return "safetensors" end
  if path:match("%.h5$") or path:match("%.hdf5$") then return "h5" end
  fail("%s: '%s' is not a weights file nnc writes: name it .h5 or .weights.h5 (Keras's HDF5) or .safetensors",
    what, path)
end

-- model.layers as Keras lists them (a functional model's InputLayer
-- included), each with its weights' names.
function Model:keras_layers()
  local out = {}
  for _, layer in ipairs(self.layers) do
    local weights = {}
    for i, name in ipairs(layer.weight_names or {}) do weights[i] = name end
    out[#out + 1] = { name = layer.name, weights = weights }
  end
  return out
end

function Model:save_weights(path)
  self:require_built()
  local format = weights_format("save_weights", path)
  if core.dry_run then return end
  if format == "h5" then return core.save_h5(self.state.store, path, { layers = self:keras_layers() }) end
  core.save_weights(self.state.graph, self.state.store, path)
end

function Model:load_weights(path)
  self:require_built()
  local format = weights_format("load_weights", path)
  if core.dry_run then return end
  if format == "h5" then return core.load_h5(self.state.store, path, { layers = self:keras_layers() }, false) end
  core.load_weights(self.state.graph, self.state.store, path)
end

-- nnc bench: time the script's last compiled model (the script ran dry).
function nn._bench()
  local model = rawget(nn, "_last_compiled")
  if not model then error("nnc bench: the script compiles no model (model:compile)", 0) end
  core.bench(model.state.graph, model.state.store)
end

function nn._check()
  local model = rawget(nn, "_last_compiled")
  if not model then error("nnc check: the script compiles no model (model:compile)", 0) end
  local d = model.check_data or {}
  core.check(model.state.graph, model.state.store, d.x, d.y)
end

-- The modules that extend nn get its internals.
local internals = {
  fail = fail, here = here, show = show, read_options = read_options, check_choice = check_choice, sorted_keys = sorted_keys,
  Model = Model, Layer = Layer, layer_specs = layer_specs, optimizer_specs = optimizer_specs,
  weights_format = weights_format, activations = activations,
}
for _, name in ipairs { "saving", "plot", "file_callbacks", "tensorboard" } do core.require(name)(nn, internals) end

-- An unknown layer or function is an error with the closest valid name.
return setmetatable(nn, {
  __index = function(_, key)
    fail("unknown layer or function nn.%s%s", tostring(key), hint(key, sorted_keys(nn)))
  end,
})
