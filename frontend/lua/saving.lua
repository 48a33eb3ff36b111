-- Whole models in one .h5 file as Keras 2 saves them (model.save /
-- keras.models.load_model): the architecture as Keras's model_config JSON,
-- the compile settings as its training_config, the weights in the layout of
-- save_weights, and the optimizer's state. Keras writes these for TF 2.6:
-- class names and config keys follow its get_config(). To save a new layer,
-- add its class to `layer_configs` (nnc options -> Keras config) and to
-- `layer_options` (Keras config -> nnc options).
local core = ...

-- Called by nn.lua with nn and its internals.
return function(nn, I)
  local fail, Model = I.fail, I.Model
  local null = core.json_null

  local function array(t) return setmetatable(t or {}, core.json_array) end
  local function pair(p) return array { p[1], p[2] } end

  local function copy(t)
    local out = {}
    for i, v in ipairs(t) do out[i] = v end
    return out
  end

  ---------------------------------------------------------------------------
  -- nnc options -> Keras config.

  local initializer_classes = {
    glorot_uniform = "GlorotUniform", glorot_normal = "GlorotNormal", he_normal = "HeNormal",
    he_uniform = "HeUniform", lecun_normal = "LecunNormal", random_normal = "RandomNormal",
    random_uniform = "RandomUniform", zeros = "Zeros", ones = "Ones", constant = "Constant",
  }

  -- nnc's defaults for the initializers' arguments (runtime/store/weights.h).
  local function initializer_config(spec)
    local class = initializer_classes[spec.kind]
    local config = { seed = null }
    if class == "RandomNormal" then
      config.mean, config.stddev = spec.mean or 0.0, spec.stddev or 0.05
    elseif class == "RandomUniform" then
      config.minval, config.maxval = spec.minval or -0.05, spec.maxval or 0.05
    elseif class == "Constant" then
      config = { value = spec.value or 0 }
    elseif class == "Zeros" or class == "Ones" then
      config = {}
    end
    return { class_name = class, config = config }
  end

  local no_regularizers = { "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
    "bias_constraint" }
  local batch_norm_initializers = { "beta_initializer", "gamma_initializer", "moving_mean_initializer",
    "moving_variance_initializer" }
  local batch_norm_nulls = { "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint" }

  local function weighted(o, c)
    c.activation = o.activation or "linear"
    c.use_bias = o.use_bias
    c.kernel_initializer = initializer_config(o.kernel_initializer)
    c.bias_initializer = initializer_config(o.bias_initializer)
    for _, k in ipairs(no_regularizers) do c[k] = null end
    return c
  end

  local function pool_config(o)
    return { pool_size = pair(o.pool_size), strides = pair(o.strides or o.pool_size), padding = o.padding,
      data_format = "channels_last" }
  end

  local layer_configs = {
    Dense = function(o) return weighted(o, { units = o.units }) end,
    Conv2D = function(o)
      return weighted(o, { filters = o.filters, kernel_size = pair(o.kernel_size), strides = pair(o.strides),
        padding = o.padding, data_format = "channels_last", dilation_rate = array { 1, 1 }, groups = 1 })
    end,
    MaxPooling2D = pool_config,
    AveragePooling2D = pool_config,
    Flatten = function() return { data_format = "channels_last" } end,
    Reshape = function(o) return { target_shape = array(copy(o.target_shape)) } end,
    Dropout = function(o) return { rate = o.rate, noise_shape = null, seed = null } end,
    Activation = function(o) return { activation = o.activation } end,
    ReLU = function() return { max_value = null, negative_slope = 0.0, threshold = 0.0 } end,
    LeakyReLU = function(o) return { alpha = o.alpha } end,
    ELU = function(o) return { alpha = o.alpha } end,
    Softmax = function() return { axis = -1 } end,
    -- Keras's build() turns axis into a list of non-negative axes, and
    -- get_config writes that list: [3] after a conv layer, [1] after a dense.
    BatchNormalization = function(o, layer)
      local c = { axis = array { #layer.output_shape - 1 }, momentum = o.momentum, epsilon = o.epsilon,
        center = o.center, scale = o.scale }
      for _, k in ipairs(batch_norm_initializers) do c[k] = initializer_config(o[k]) end
      for _, k in ipairs(batch_norm_nulls) do c[k] = null end
      return c
    end,
  }

  local function batch_shape(dims)
    local out = array { null }
    for _, d in ipairs(dims) do out[#out + 1] = d end
    return out
  end

  local function layer_config(layer)
    local build = layer_configs[layer.class]
    if not build then fail("save: layer '%s' (%s) cannot be saved as a Keras model yet", layer.name, layer.class) end
    local c = build(layer.opts, layer)
    c.name, c.trainable, c.dtype = layer.name, layer.opts.trainable ~= false, "float32"
    if layer.opts.input_shape then c.batch_input_shape = batch_shape(layer.opts.input_shape) end
    return { class_name = layer.class, config = c }
  end

  local function input_layer_config(name, dims)
    return { class_name = "InputLayer",
      config = { batch_input_shape = batch_shape(dims), dtype = "float32", sparse = false, ragged = false, name = name } }
  end

  local function sequential_config(model)
    local first = model.layers[1]
    local layers = array { input_layer_config(model.input_name, first.opts.input_shape) }
    for _, layer in ipairs(model.layers) do layers[#layers + 1] = layer_config(layer) end
    return { class_name = "Sequential", config = { name = model.name, layers = layers } }
  end

  local function functional_config(model)
    local layers = array {}
    for _, layer in ipairs(model.layers) do
      local entry
      if layer.class == "InputLayer" then
        local dims = {}
        for i = 2, #layer.output_shape do dims[#dims + 1] = layer.output_shape[i] end
        entry = input_layer_config(layer.name, dims)
        entry.inbound_nodes = array {}
      else
        entry = layer_config(layer)
        entry.inbound_nodes = array {}
        for _, call in ipairs(layer.inbound) do
          entry.inbound_nodes[#entry.inbound_nodes + 1] = array { array { call[1], call[2], 0, {} } }
        end
      end
      entry.name = layer.name
      layers[#layers + 1] = entry
    end
    local out = model.output
    return { class_name = "Functional", config = { name = model.name, layers = layers,
      input_layers = array { array { model.input_layer.name, 0, 0 } },
      output_layers = array { array { out.layer_name, out.node_index, 0 } } } }
  end

  -- Each optimizer's Keras config, and its slots in the order Keras creates them.
  local optimizers = {
    sgd = { class = "SGD", keys = { "learning_rate", "momentum", "nesterov" },
      slots = function(o) return o.momentum ~= 0 and { "momentum" } or {} end },
    adam = { class = "Adam", keys = { "learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad" },
      slots = function() return { "m", "v" } end },
    rmsprop = { class = "RMSprop", keys = { "learning_rate", "rho", "momentum", "epsilon", "centered" },
      slots = function() return { "rms" } end },
  }

  local function training_config(model)
    local c = model.compiled
    local opt = optimizers[c.optimizer.kind]
    local config = { name = opt.class, decay = 0.0 }
    for _, k in ipairs(opt.keys) do config[k] = c.optimizer[k] end
    return {
      loss = c.loss, metrics = array(copy(c.metrics)), weighted_metrics = null, loss_weights = null,
      optimizer_config = { class_name = opt.class, config = config },
    }
  end

  function Model:keras_model_config()
    self:require_built()
    return self.kind == "Sequential" and sequential_config(self) or functional_config(self)
  end

  local function check_model_path(what, path)
    if I.weights_format(what, path) ~= "h5" then
      fail("%s: '%s': a whole model is saved as Keras's HDF5; name it .h5", what, path)
    end
  end

  function Model:save(path)
    self:require_built()
    check_model_path("save", path)
    local spec = { layers = self:keras_layers(), model_config = core.json_encode(self:keras_model_config()) }
    if self.compiled then
      spec.training_config = core.json_encode(training_config(self))
      local opt = optimizers[self.compiled.optimizer.kind]
      spec.optimizer = { class = opt.class, slots = opt.slots(self.compiled.optimizer) }
    end
    if core.dry_run then return end
    core.save_h5(self.state.store, path, spec)
  end

  ---------------------------------------------------------------------------
  -- Keras config -> nnc options, refusing what nnc does not implement.

  local initializer_kinds = {}
  for kind, class in pairs(initializer_classes) do initializer_kinds[class] = kind end

  local loader = {} -- the file being loaded, for messages

  local function load_fail(layer, fmt, ...)
    local what = layer and string.format("layer '%s' (%s): ", layer.name, layer.class) or ""
    fail("load_model: %s: %s%s", loader.path, what, string.format(fmt, ...))
  end

  local function same(a, b)
    if type(a) ~= "table" or type(b) ~= "table" then return a == b end
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return true
  end

  local function show(v)
    if v == null then return "null" end
    if type(v) == "table" then return core.json_encode(v) end
    return tostring(v)
  end

  -- A file is data from anyone: each part of its JSON is checked for the
  -- kind it must be before it is used.
  local function want(layer, v, kind, what)
    if type(v) ~= kind then
      load_fail(layer, "%s is %s, expected %s", what, v == nil and "missing" or show(v),
        kind == "table" and "a list or object" or "a " .. kind)
    end
    return v
  end

  local function list_of(layer, v, what)
    if v == nil or v == null then return {} end
    return want(layer, v, "table", what)
  end

  local function initializer_from(layer, c)
    local class = type(c) == "table" and c.class_name
    local kind = class and initializer_kinds[class]
    if not kind then load_fail(layer, "initializer %s is not one nnc implements", show(c)) end
    local spec = { kind }
    for k, v in pairs(list_of(layer, c.config, "the initializer's config")) do
      if k ~= "seed" and k ~= "dtype" then spec[k] = v end
    end
    return spec
  end

  local function activation_from(layer, a)
    if type(a) ~= "string" or I.activations[a] == nil then
      load_fail(layer, "activation %s is not one nnc implements", show(a))
    end
    if a == "linear" then return nil end
    return a
  end

  local function weighted_from(layer, c, o)
    o.activation = activation_from(layer, c.activation)
    o.use_bias = c.use_bias
    o.kernel_initializer = initializer_from(layer, c.kernel_initializer)
    o.bias_initializer = initializer_from(layer, c.bias_initializer)
    return o
  end

  local function pool_from(_, c) return { c.pool_size, strides = c.strides, padding = c.padding } end

  -- Per class: nnc's options from the config, and the keys whose value must be
  -- Keras's default because nnc implements only that.
  local defaults = { data_format = "channels_last", dilation_rate = { 1, 1 }, groups = 1, noise_shape = null,
    max_value = null, negative_slope = 0, threshold = 0, axis = -1 }
  for _, k in ipairs(no_regularizers) do defaults[k] = null end
  for _, k in ipairs(batch_norm_nulls) do defaults[k] = null end

  -- Keras writes -1 for a layer never built and [k] once built; nnc's layer
  -- checks k against its input when the model is rebuilt.
  local function axis_from(layer, a)
    if math.type(a) == "integer" then return a end
    if type(a) == "table" and #a == 1 and math.type(a[1]) == "integer" then return a[1] end
    load_fail(layer, "axis = %s: nnc normalizes one axis, the last", show(a))
  end

  local function batch_norm_from(layer, c)
    local o = { axis = axis_from(layer, c.axis), momentum = c.momentum, epsilon = c.epsilon, center = c.center,
      scale = c.scale }
    for _, k in ipairs(batch_norm_initializers) do
      if c[k] ~= nil then o[k] = initializer_from(layer, c[k]) end
    end
    return o
  end

  local layer_options = {
    Dense = { read = function(l, c) return weighted_from(l, c, { c.units }) end,
      keys = { "units", "activation", "use_bias", "kernel_initializer", "bias_initializer" } },
    Conv2D = { read = function(l, c)
        return weighted_from(l, c, { c.filters, c.kernel_size, strides = c.strides, padding = c.padding })
      end,
      keys = { "filters", "kernel_size", "strides", "padding", "activation", "use_bias", "kernel_initializer",
        "bias_initializer" } },
    MaxPooling2D = { read = pool_from, keys = { "pool_size", "strides", "padding" } },
    AveragePooling2D = { read = pool_from, keys = { "pool_size", "strides", "padding" } },
    Flatten = { read = function() return {} end, keys = {} },
    Reshape = { read = function(_, c) return { c.target_shape } end, keys = { "target_shape" } },
    Dropout = { read = function(_, c) return { c.rate } end, keys = { "rate", "seed" } },
    Activation = { read = function(l, c) return { activation_from(l, c.activation) or "linear" } end,
      keys = { "activation" } },
    ReLU = { read = function() return {} end, keys = {} },
    -- Keras 2 writes the slope as alpha, Keras 3 as negative_slope.
    LeakyReLU = { read = function(l, c)
        if c.alpha ~= nil and c.negative_slope ~= nil then
          load_fail(l, "config has both alpha and negative_slope; Keras writes one")
        end
        return { c.negative_slope == nil and c.alpha or c.negative_slope }
      end,
      keys = { "alpha", "negative_slope" } },
    ELU = { read = function(_, c) return { c.alpha } end, keys = { "alpha" } },
    Softmax = { read = function() return {} end, keys = {} },
    BatchNormalization = { read = batch_norm_from,
      keys = { "axis", "momentum", "epsilon", "center", "scale", table.unpack(batch_norm_initializers) } },
  }
  -- Keys every layer's config has that need nothing from nnc.
  local common_keys = { name = true, trainable = true, dtype = true, batch_input_shape = true }

  local function check_keys(layer, c, keys)
    local known = {}
    for _, k in ipairs(keys) do known[k] = true end
    -- A key the class reads (BatchNormalization's axis) is not held to a default.
    for k, v in pairs(c) do
      if not known[k] and defaults[k] ~= nil then
        if not same(v, defaults[k]) then
          load_fail(layer, "%s = %s, which nnc does not implement (only %s)", k, show(v), show(defaults[k]))
        end
      elseif not known[k] and not common_keys[k] then
        load_fail(layer, "option '%s' = %s is not one nnc implements", k, show(v))
      end
    end
  end

  local function input_dims(layer, c)
    local shape = c.batch_input_shape
    if type(shape) ~= "table" or #shape < 2 then load_fail(layer, "batch_input_shape %s is not [null, ...]", show(shape)) end
    local dims = {}
    for i = 2, #shape do dims[#dims + 1] = shape[i] end
    return dims
  end

  local function make_layer(entry)
    local class, c = entry.class_name, entry.config
    local name = type(c) == "table" and type(c.name) == "string" and c.name or "?"
    local layer = { name = name, class = tostring(class) }
    local spec = layer_options[class]
    if not spec then load_fail(layer, "nnc has no layer %s", show(class)) end
    if type(c) ~= "table" then load_fail(layer, "config is not an object") end
    check_keys(layer, c, spec.keys)
    local opts = spec.read(layer, c)
    opts.name = c.name ~= nil and want(layer, c.name, "string", "its name") or nil
    if c.trainable == false then opts.trainable = false end
    if c.batch_input_shape then opts.input_shape = input_dims(layer, c) end
    return nn[class](opts)
  end

  local function build_sequential(c)
    local model = nn.Sequential {}
    model.name = c.name ~= nil and want(nil, c.name, "string", "the model's name") or model.name
    local input_shape
    for _, entry in ipairs(list_of(nil, c.layers, "config.layers")) do
      want(nil, entry, "table", "a layer entry")
      if entry.class_name == "InputLayer" then
        local ic = want(nil, entry.config, "table", "an InputLayer's config")
        input_shape = input_dims({ name = tostring(ic.name), class = "InputLayer" }, ic)
      else
        local layer = make_layer(entry)
        if input_shape and #model.layers == 0 then layer.opts.input_shape = input_shape end
        model:add(layer)
      end
    end
    return model
  end

  local function one_inbound(layer, node)
    if type(node) ~= "table" or #node ~= 1 or type(node[1]) ~= "table" then
      load_fail(layer, "a layer called on %s: nnc's layers take one input", show(node))
    end
    return node[1][1], node[1][2] or 0
  end

  local function build_functional(c)
    local outputs, input = {}, nil -- outputs[layer name][node index + 1]
    local function tensor(layer, name, index)
      local t = math.type(index) == "integer" and outputs[name] and outputs[name][index + 1]
      if not t then load_fail(layer, "its input %s:%s comes before it is made", tostring(name), show(index)) end
      return t
    end
    for _, entry in ipairs(list_of(nil, c.layers, "config.layers")) do
      want(nil, entry, "table", "a layer entry")
      local c2 = list_of(nil, entry.config, "a layer's config")
      if entry.class_name == "InputLayer" then
        if input then load_fail(nil, "a model with several inputs") end
        want(nil, c2.name, "string", "an InputLayer's name")
        input = nn.Input { shape = input_dims({ name = c2.name, class = "InputLayer" }, c2), name = c2.name }
        outputs[c2.name] = { input }
      else
        local layer = make_layer(entry)
        outputs[layer.name] = {}
        for _, node in ipairs(list_of(layer, entry.inbound_nodes, "inbound_nodes")) do
          local name, index = one_inbound(layer, node)
          outputs[layer.name][#outputs[layer.name] + 1] = layer(tensor(layer, name, index))
        end
      end
    end
    local out = c.output_layers
    if type(out) ~= "table" or #out ~= 1 or type(out[1]) ~= "table" or not input then
      load_fail(nil, "a model needs one input and one output")
    end
    local name = c.name ~= nil and want(nil, c.name, "string", "the model's name") or nil
    return nn.Model { inputs = input, outputs = tensor(nil, out[1][1], out[1][2] or 0), name = name }
  end

  local function metric_name(m)
    if type(m) == "string" then return m end
    if type(m) == "table" and m.config and m.config.name then return m.config.name end
    if type(m) == "table" and #m == 1 then return metric_name(m[1]) end
    load_fail(nil, "metric %s is not one nnc implements", show(m))
  end

  local function compile_from(model, t)
    want(nil, t, "table", "training_config")
    local oc = list_of(nil, t.optimizer_config, "optimizer_config")
    local kind = tostring(oc.class_name or ""):gsub("^Custom>", ""):lower()
    local opt = optimizers[kind]
    if not opt then load_fail(nil, "optimizer %s is not one nnc implements", show(oc.class_name)) end
    local args = {}
    local config = list_of(nil, oc.config, "the optimizer's config")
    for _, k in ipairs(opt.keys) do args[k] = config[k] end
    args.learning_rate = args.learning_rate or config.lr
    if type(args.learning_rate) ~= "number" then
      load_fail(nil, "learning_rate %s is not a number (schedules are not implemented)", show(args.learning_rate))
    end
    local decay = config.decay
    if decay and decay ~= 0 then load_fail(nil, "optimizer decay = %s is not implemented", show(decay)) end
    local loss = t.loss
    if type(loss) == "table" and type(loss.class_name) == "string" then
      loss = loss.class_name:gsub("(%l)(%u)", "%1_%2"):lower()
    end
    local metrics = {}
    for _, m in ipairs(list_of(nil, t.metrics, "metrics")) do metrics[#metrics + 1] = metric_name(m) end
    model:compile { optimizer = nn[opt.class](args), loss = loss, metrics = metrics }
  end

  local function decode(what, text)
    local v, err = core.json_decode(text)
    if v == nil then load_fail(nil, "%s is not JSON: %s", what, err) end
    return v
  end

  function nn.load_model(path)
    check_model_path("load_model", path)
    loader.path = path
    local model_text, training_text = core.h5_config(path)
    if not model_text then
      load_fail(nil, "the file holds weights only (model:save_weights); build the model and call load_weights")
    end
    local config = decode("model_config", model_text)
    local c = type(config) == "table" and type(config.config) == "table" and config.config
      or load_fail(nil, "model_config has no config")
    local model
    if config.class_name == "Sequential" then
      model = build_sequential(c)
    elseif config.class_name == "Functional" or config.class_name == "Model" then
      model = build_functional(c)
    else
      load_fail(nil, "model class %s is not one nnc builds", show(config.class_name))
    end
    model:require_built()
    if training_text then compile_from(model, decode("training_config", training_text)) end
    if not core.dry_run then
      core.load_h5(model.state.store, path, { layers = model:keras_layers() }, training_text ~= nil)
    end
    return model
  end
end
