-- The Keras callbacks that write files: CSVLogger and ModelCheckpoint
-- (TensorBoard lives in tensorboard.lua). Each is a plain callback table
-- (callbacks.lua), so fit treats it like any other. Every file goes through
-- core.write_file or the model's savers, which write a temporary, flush it
-- and rename it: a kill at any moment leaves the last complete file.
local core = ...

return function(nn, I)
  local fail, read_options, check_choice = I.fail, I.read_options, I.check_choice
  local show = I.show

  -- Python's repr of a float: the shortest decimal that reads back the same,
  -- as Keras's csv module writes log values.
  local function repr(v)
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    for digits = 1, 17 do
      local s = string.format("%." .. digits .. "g", v)
      if tonumber(s) == v then
        if not s:find("[.eni]") then s = s .. ".0" end
        return s
      end
    end
  end

  local function sorted(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
  end

  -------------------------------------------------------------------------
  -- CSVLogger(filename, {separator=",", append=false}): a header of
  -- "epoch" and the log keys (sorted, as Keras), then one row per epoch
  -- with the 0-based epoch index, as Keras writes it.

  function nn.CSVLogger(filename, arg)
    if type(filename) ~= "string" then fail("CSVLogger takes a file name, got %s", type(filename)) end
    local o = read_options({ class = "CSVLogger", positional = {}, options = { separator = ",", append = false } },
      arg or {})
    if type(o.separator) ~= "string" or #o.separator ~= 1 then
      fail("CSVLogger: separator must be one character, got %s", show(o.separator))
    end
    local cb = { filename = filename }
    function cb:on_train_begin()
      self.text, self.keys = "", nil
      self.header = true
      if o.append then
        local f = io.open(filename, "rb")
        if f then
          self.text = f:read("a") or ""
          f:close()
          self.header = #self.text == 0
          if #self.text > 0 and self.text:sub(-1) ~= "\n" then self.text = self.text .. "\n" end
        end
      end
    end
    function cb:on_epoch_end(epoch, logs)
      self.keys = self.keys or sorted(logs)
      local rows = {}
      if self.header then
        rows[1] = "epoch" .. o.separator .. table.concat(self.keys, o.separator) .. "\r\n"
        self.header = false
      end
      local fields = { tostring(epoch) }
      for _, k in ipairs(self.keys) do fields[#fields + 1] = logs[k] ~= nil and repr(logs[k]) or "NA" end
      rows[#rows + 1] = table.concat(fields, o.separator) .. "\r\n"
      self.text = self.text .. table.concat(rows)
      core.write_file(filename, self.text)
    end
    return cb
  end

  -------------------------------------------------------------------------
  -- ModelCheckpoint: filepath may hold Python format fields, {epoch:02d}
  -- (the 1-based epoch, as Keras) and any log key ({val_loss:.4f}).

  -- One "{name:spec}" field: Python's format-spec mini-language as far as
  -- C's printf reaches (fill and alignment other than zero-padding are not).
  local function format_field(path, name, spec, value)
    local flags, width, precision, kind = spec:match("^([-+ 0#]*)(%d*)%.?(%d*)([dfeEgGs%%]?)$")
    if not flags then fail("ModelCheckpoint: filepath '%s': field {%s:%s} has a format nnc does not implement", path, name, spec) end
    if kind == "" then kind = math.type(value) == "integer" and "d" or "s" end
    if kind == "d" then
      if value ~= math.floor(value) then fail("ModelCheckpoint: filepath '%s': {%s:%s} needs an integer, got %s", path, name, spec, repr(value)) end
      value = math.tointeger(value)
    end
    if kind == "s" then value = repr(value) end
    if kind == "%" then value, kind = value * 100, "f" end
    local fmt = "%" .. flags .. width .. (precision ~= "" and ("." .. precision) or "") .. kind
    return string.format(fmt, value) .. (spec:sub(-1) == "%" and "%" or "")
  end

  local function expand(path, epoch, logs)
    return (path:gsub("{([%w_]*):?([^}]*)}", function(name, spec)
      local value = name == "epoch" and epoch + 1 or logs[name]
      if value == nil then
        local keys = sorted(logs)
        table.insert(keys, 1, "epoch")
        fail("ModelCheckpoint: filepath '%s' has a field {%s}, which is not epoch or a log key (%s)", path, name,
          table.concat(keys, ", "))
      end
      return format_field(path, name, spec, value)
    end))
  end

  local checkpoint_defaults = { filepath = nn.REQUIRED, monitor = "val_loss", verbose = 0, save_best_only = false,
    save_weights_only = false, mode = "auto", save_freq = "epoch" }

  function nn.ModelCheckpoint(arg)
    local o = read_options({ class = "ModelCheckpoint", positional = { "filepath" }, options = checkpoint_defaults }, arg)
    if type(o.filepath) ~= "string" then fail("ModelCheckpoint: filepath must be a string, got %s", show(o.filepath)) end
    check_choice("ModelCheckpoint mode", o.mode, { "auto", "min", "max" })
    if o.save_freq ~= "epoch" then
      fail("ModelCheckpoint: save_freq = %s is not implemented; nnc saves at the end of each epoch ('epoch')", tostring(o.save_freq))
    end
    -- The saver by extension, checked now rather than after an epoch of training.
    local format = I.weights_format("ModelCheckpoint", (o.filepath:gsub("{[^}]*}", "x")))
    if format ~= "h5" and not o.save_weights_only then
      fail("ModelCheckpoint: '%s': a whole model is saved as Keras's HDF5 (.h5); or set save_weights_only = true", o.filepath)
    end
    -- Keras 2: "auto" maximizes a monitor naming acc (or fmeasure), minimizes the rest.
    local maximize = o.mode == "max" or (o.mode == "auto" and (o.monitor:find("acc", 1, true) or o.monitor:match("^fmeasure")))
    local cb = { best = maximize and -math.huge or math.huge }
    function cb:on_epoch_end(epoch, logs)
      local path = expand(o.filepath, epoch, logs)
      if o.save_best_only then
        local current = logs[o.monitor]
        if current == nil then
          print(string.format("WARNING: Can save best model only with %s available, skipping.", o.monitor))
          return
        end
        local better = maximize and current > self.best or (not maximize and current < self.best)
        if not better then
          if o.verbose > 0 then
            print(string.format("\nEpoch %05d: %s did not improve from %0.5f", epoch + 1, o.monitor, self.best))
          end
          return
        end
        if o.verbose > 0 then
          print(string.format("\nEpoch %05d: %s improved from %0.5f to %0.5f, saving model to %s", epoch + 1,
            o.monitor, self.best, current, path))
        end
        self.best = current
      elseif o.verbose > 0 then
        print(string.format("\nEpoch %05d: saving model to %s", epoch + 1, path))
      end
      if o.save_weights_only then self.model:save_weights(path) else self.model:save(path) end
    end
    return cb
  end
end
