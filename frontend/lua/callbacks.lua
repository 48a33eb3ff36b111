-- Keras's callbacks. A callback is any table with some of Keras's methods,
-- each called with the callback itself first:
--   on_train_begin(logs), on_train_end(logs), on_epoch_begin(epoch, logs),
--   on_epoch_end(epoch, logs), on_train_batch_begin(batch, logs),
--   on_train_batch_end(batch, logs) (also spelled on_batch_begin/_end),
--   on_test_begin(logs), on_test_end(logs)
-- with self.model the model and self.params {epochs, steps, verbose,
-- metrics}; setting self.model.stop_training = true stops training after
-- the batch or epoch. The built-in callbacks below are such tables, and fit
-- treats them like any other: runtime/train/fit.c raises the events, prepare()
-- hands each to every callback that has the method, in the user's order,
-- then to the History that fit returns.
local core = ...

return function(nn, util)
  local fail, hint, read_options, check_choice = util.fail, util.hint, util.read_options, util.check_choice
  local show = util.show

  local events = { "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
    "on_train_batch_end", "on_test_begin", "on_test_end" }
  local methods = { "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
    "on_train_batch_end", "on_test_begin", "on_test_end", "on_batch_begin", "on_batch_end" }
  -- Keras 2's on_batch_* are the older names of on_train_batch_*.
  local alias = { on_train_batch_begin = "on_batch_begin", on_train_batch_end = "on_batch_end" }
  -- Methods Keras has that fit never calls here: a callback defining one
  -- would silently do nothing, so it is refused.
  local not_called = { "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end" }

  local function method_of(cb, event)
    return cb[event] or (alias[event] and cb[alias[event]])
  end

  local function contains(list, v)
    for _, x in ipairs(list) do if x == v then return true end end
    return false
  end

  local function check_callback(cb, i)
    local what = string.format("callbacks[%d]", i)
    if type(cb) ~= "table" then
      fail("%s is a %s; a callback is a table with Keras's methods (%s), or nn.LambdaCallback { on_epoch_end = function(epoch, logs) ... end }",
        what, type(cb), table.concat(events, ", "))
    end
    local any = false
    for _, m in ipairs(methods) do
      local f = cb[m]
      if f ~= nil and type(f) ~= "function" then fail("%s.%s must be a function, got a %s", what, m, type(f)) end
      any = any or f ~= nil
    end
    for _, m in ipairs { "set_model", "set_params" } do
      if cb[m] ~= nil and type(cb[m]) ~= "function" then fail("%s.%s must be a function, got %s", what, m, show(cb[m])) end
    end
    for _, m in ipairs(not_called) do
      if cb[m] ~= nil then fail("%s.%s: nnc's fit does not call %s; use on_train_batch_end or on_test_end", what, m, m) end
    end
    for k in pairs(cb) do
      if type(k) == "string" and k:match("^on_") and not contains(methods, k) then
        fail("%s has an unknown method '%s'%s", what, k, hint(k, methods))
      end
    end
    if not any then
      fail("%s has none of Keras's callback methods (%s)", what, table.concat(events, ", "))
    end
  end

  -- Keras's History, the last callback: the epoch logs after every other
  -- callback has seen (and perhaps extended) them. fit returns its table,
  -- which also answers Keras's spelling history.history.
  local function History()
    local h = { values = {}, epochs = {} }
    setmetatable(h.values, { __index = { history = h.values, epoch = h.epochs } })
    function h:on_epoch_end(epoch, logs)
      self.epochs[#self.epochs + 1] = epoch
      for k, v in pairs(logs) do
        self.values[k] = self.values[k] or {}
        table.insert(self.values[k], v)
      end
    end
    return h
  end

  -- The callbacks of one fit: checks each, sets model and params, and
  -- returns { dispatch, wanted, history } for core.fit.
  local function prepare(model, list, params)
    if list ~= nil and (type(list) ~= "table" or (next(list) ~= nil and #list == 0)) then
      fail("fit: callbacks must be a list of callbacks, as callbacks = { nn.EarlyStopping {...} }, got %s",
        type(list) == "table" and "a table with no list entries" or ("a " .. type(list)))
    end
    local all = {}
    for i, cb in ipairs(list or {}) do
      check_callback(cb, i)
      all[#all + 1] = cb
    end
    local history = History()
    all[#all + 1] = history
    model.stop_training = false
    local wanted = {}
    for _, cb in ipairs(all) do
      if cb.set_model then cb:set_model(model) else cb.model = model end
      if cb.set_params then cb:set_params(params) else cb.params = params end
      for _, event in ipairs(events) do
        if method_of(cb, event) then wanted[event] = true end
      end
    end
    local function dispatch(event, index, logs)
      for _, cb in ipairs(all) do
        local f = method_of(cb, event)
        if f then
          if index then f(cb, index, logs) else f(cb, logs) end
        end
      end
      return model.stop_training == true
    end
    return { dispatch = dispatch, wanted = wanted, history = history.values }
  end

  local function check_integer(class, name, v, min)
    if math.type(v) ~= "integer" or v < min then
      fail("%s: %s must be an integer >= %d, got %s", class, name, min, show(v))
    end
  end

  local function check_number(class, name, v)
    if type(v) ~= "number" or v ~= v then fail("%s: %s must be a number, got %s", class, name, show(v)) end
  end

  local function f32(x) return (string.unpack("f", string.pack("f", x))) end

  local function is_bad(x) return x ~= x or x == math.huge or x == -math.huge end

  -- The names fit logs, for a monitor check before training starts.
  local function check_monitor(class, monitor, params)
    local names = params and params.metrics
    if names and not contains(names, monitor) then
      fail("%s monitors '%s', which fit does not produce%s (it logs %s)", class, monitor, hint(monitor, names),
        table.concat(names, ", "))
    end
  end

  -------------------------------------------------------------------------
  -- EarlyStopping: Keras's on_epoch_end is runtime/train/early_stopping.c; this
  -- table moves the weights when it says so.

  local early_stopping_defaults = { monitor = "val_loss", patience = 0, min_delta = 0, mode = "auto",
    restore_best_weights = false, verbose = 0, baseline = nn.NONE, start_from_epoch = 0 }

  function nn.EarlyStopping(arg)
    local o = read_options({ class = "EarlyStopping", positional = {}, options = early_stopping_defaults }, arg or {})
    check_choice("EarlyStopping mode", o.mode, { "auto", "min", "max" })
    if type(o.monitor) ~= "string" then fail("EarlyStopping: monitor must be a string, got %s", show(o.monitor)) end
    check_integer("EarlyStopping", "patience", o.patience, 0)
    check_integer("EarlyStopping", "start_from_epoch", o.start_from_epoch, 0)
    check_integer("EarlyStopping", "verbose", o.verbose, 0)
    check_number("EarlyStopping", "min_delta", o.min_delta)
    if o.baseline ~= nil then check_number("EarlyStopping", "baseline", o.baseline) end
    if type(o.restore_best_weights) ~= "boolean" then
      fail("EarlyStopping: restore_best_weights must be true or false, got %s", show(o.restore_best_weights))
    end
    local state = core.early_stopping(o)
    local cb = { monitor = o.monitor, patience = o.patience }
    function cb:on_train_begin()
      check_monitor("EarlyStopping", o.monitor, self.params)
      state:reset()
      self.best_weights = nil
    end
    function cb:on_epoch_end(epoch, logs)
      local current = logs[o.monitor]
      if current == nil then return end
      local stop, snapshot, restore = state:on_epoch(epoch, current)
      if snapshot then self.best_weights = self.model:get_weights() end
      if not stop then return end
      self.model.stop_training = true
      if restore and self.best_weights then
        if o.verbose > 0 then
          print(string.format("Restoring model weights from the end of the best epoch: %d.", state:best_epoch() + 1))
        end
        self.model:set_weights(self.best_weights)
      end
    end
    function cb:on_train_end()
      self.stopped_epoch = state:stopped_epoch()
      if self.stopped_epoch > 0 and o.verbose > 0 then
        print(string.format("Epoch %d: early stopping", self.stopped_epoch + 1))
      end
    end
    return cb
  end

  -------------------------------------------------------------------------
  -- TerminateOnNaN: stops at the first batch whose loss is not finite.

  function nn.TerminateOnNaN(arg)
    if arg ~= nil and (type(arg) ~= "table" or next(arg) ~= nil) then fail("TerminateOnNaN takes no options") end
    local cb = {}
    function cb:on_train_batch_end(batch, logs)
      if logs.loss ~= nil and is_bad(logs.loss) then
        print(string.format("Batch %d: Invalid loss, terminating training", batch))
        self.model.stop_training = true
      end
    end
    return cb
  end

  -------------------------------------------------------------------------
  -- ReduceLROnPlateau, as Keras 2's: the rate is a float32 variable there,
  -- so each new rate is rounded to float32 as Keras stores it.

  local plateau_defaults = { monitor = "val_loss", factor = 0.1, patience = 10, verbose = 0, mode = "auto",
    min_delta = 1e-4, cooldown = 0, min_lr = 0 }

  function nn.ReduceLROnPlateau(arg)
    local o = read_options({ class = "ReduceLROnPlateau", positional = {}, options = plateau_defaults }, arg or {})
    check_choice("ReduceLROnPlateau mode", o.mode, { "auto", "min", "max" })
    if type(o.monitor) ~= "string" then fail("ReduceLROnPlateau: monitor must be a string, got %s", show(o.monitor)) end
    check_number("ReduceLROnPlateau", "factor", o.factor)
    if o.factor >= 1 then fail("ReduceLROnPlateau does not support a factor >= 1.0, got %s", show(o.factor)) end
    check_integer("ReduceLROnPlateau", "patience", o.patience, 0)
    check_integer("ReduceLROnPlateau", "cooldown", o.cooldown, 0)
    check_integer("ReduceLROnPlateau", "verbose", o.verbose, 0)
    check_number("ReduceLROnPlateau", "min_delta", o.min_delta)
    check_number("ReduceLROnPlateau", "min_lr", o.min_lr)
    -- Keras: "min", or "auto" for a monitor without "acc" in its name, minimizes.
    local minimize = o.mode == "min" or (o.mode == "auto" and not o.monitor:find("acc", 1, true))
    local function better(a, b)
      if minimize then return a < b - o.min_delta end
      return a > b + o.min_delta
    end
    local cb = {}
    function cb:on_train_begin()
      check_monitor("ReduceLROnPlateau", o.monitor, self.params)
      self.best, self.wait, self.cooldown_counter = minimize and math.huge or -math.huge, 0, 0
    end
    function cb:on_epoch_end(epoch, logs)
      local optimizer = self.model.optimizer
      logs.lr = optimizer.learning_rate
      local current = logs[o.monitor]
      if current == nil then return end
      if self.cooldown_counter > 0 then
        self.cooldown_counter = self.cooldown_counter - 1
        self.wait = 0
      end
      if better(current, self.best) then
        self.best, self.wait = current, 0
      elseif self.cooldown_counter <= 0 then
        self.wait = self.wait + 1
        if self.wait >= o.patience then
          local old = f32(optimizer.learning_rate)
          if old > f32(o.min_lr) then
            local new = math.max(f32(old * o.factor), o.min_lr)
            optimizer.learning_rate = new
            if o.verbose > 0 then
              print(string.format("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %.9g.", epoch + 1, new))
            end
            self.cooldown_counter, self.wait = o.cooldown, 0
          end
        end
      end
    end
    return cb
  end

  -------------------------------------------------------------------------
  -- LearningRateScheduler(schedule [, { verbose }]): schedule(epoch, lr)
  -- gives the rate of each epoch (epoch 0-based, as Keras).

  function nn.LearningRateScheduler(schedule, arg)
    local o
    if type(schedule) == "table" then
      o = read_options({ class = "LearningRateScheduler", positional = { "schedule" },
        options = { schedule = nn.REQUIRED, verbose = 0 } }, schedule)
    else
      o = read_options({ class = "LearningRateScheduler", positional = {}, options = { verbose = 0 } }, arg or {})
      o.schedule = schedule
    end
    if type(o.schedule) ~= "function" then
      fail("LearningRateScheduler takes a function(epoch, lr) returning the rate, got a %s", type(o.schedule))
    end
    check_integer("LearningRateScheduler", "verbose", o.verbose, 0)
    local cb = {}
    function cb:on_epoch_begin(epoch)
      local optimizer = self.model.optimizer
      local lr = o.schedule(epoch, optimizer.learning_rate)
      if type(lr) ~= "number" or is_bad(lr) or lr < 0 then
        fail("LearningRateScheduler: the schedule returned %s for epoch %d; it must return a finite number >= 0",
          show(lr), epoch)
      end
      optimizer.learning_rate = f32(lr)
      if o.verbose > 0 then
        print(string.format("\nEpoch %d: LearningRateScheduler setting learning rate to %.9g.", epoch + 1, lr))
      end
    end
    function cb:on_epoch_end(_, logs)
      logs.lr = self.model.optimizer.learning_rate
    end
    return cb
  end

  -------------------------------------------------------------------------
  -- LambdaCallback: Keras calls its functions without self.

  function nn.LambdaCallback(arg)
    if type(arg) ~= "table" then fail("LambdaCallback takes a table { on_epoch_end = function(epoch, logs) ... end, ... }") end
    local cb = {}
    for k, f in pairs(arg) do
      if not contains(methods, k) then
        util.unknown_keyword("LambdaCallback", k, methods)
      end
      if type(f) ~= "function" then fail("LambdaCallback: %s must be a function, got a %s", k, type(f)) end
      cb[k] = function(_, ...) return f(...) end
    end
    return cb
  end

  return { prepare = prepare }
end
