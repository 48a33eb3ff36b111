-- nn.TensorBoard: Keras 2's TensorBoard callback. Event files under
-- log_dir/train (training's epoch_<name> scalars, batch_<name> with
-- update_freq, weight histograms and with write_images weight images, the
-- graph) and log_dir/validation (the
-- val_ logs as epoch_<name>), written by runtime/store/tensorboard.c. Steps are
-- Keras's: the 0-based epoch for epoch scalars and histograms, the count of
-- batches trained for batch scalars.
local core = ...

return function(nn, I)
  local fail, read_options, show = I.fail, I.read_options, I.show

  local defaults = { log_dir = "logs", histogram_freq = 0, write_graph = true, write_images = false,
    write_steps_per_second = false, update_freq = "epoch", profile_batch = 0, embeddings_freq = 0,
    embeddings_metadata = nn.NONE }
  -- Options Keras has whose work nnc does not do: only their off value is taken.
  local not_implemented = { write_steps_per_second = false, profile_batch = 0, embeddings_freq = 0 }

  local function sorted(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
  end

  function nn.TensorBoard(arg)
    local o = read_options({ class = "TensorBoard", positional = { "log_dir" }, options = defaults }, arg or {})
    if type(o.log_dir) ~= "string" then fail("TensorBoard: log_dir must be a path, got %s", show(o.log_dir)) end
    if math.type(o.histogram_freq) ~= "integer" or o.histogram_freq < 0 then
      fail("TensorBoard: histogram_freq must be an integer >= 0, got %s", show(o.histogram_freq))
    end
    if type(o.write_graph) ~= "boolean" then fail("TensorBoard: write_graph must be true or false") end
    if type(o.write_images) ~= "boolean" then fail("TensorBoard: write_images must be true or false") end
    for k, off in pairs(not_implemented) do
      if o[k] ~= off then fail("TensorBoard: %s = %s is not implemented by nnc (only %s)", k, tostring(o[k]), tostring(off)) end
    end
    if o.embeddings_metadata ~= nil then fail("TensorBoard: embeddings_metadata is not implemented by nnc") end
    local every = o.update_freq == "batch" and 1 or math.type(o.update_freq) == "integer" and o.update_freq or nil
    if o.update_freq ~= "epoch" and not (every and every >= 1) then
      fail("TensorBoard: update_freq must be 'epoch', 'batch' or a positive integer, got %s", show(o.update_freq))
    end
    local cb = { log_dir = o.log_dir, batches = 0 }

    local function flush(self)
      self.train:flush()
      if self.validation then self.validation:flush() end
    end

    function cb:on_train_begin()
      self.train = core.tb_open(o.log_dir .. "/train")
      self.validation = nil
      local model = self.model
      if o.write_graph then
        self.train:graph(model.state.graph, model.state.store, self.params and self.params.batch_size or 32)
      end
      self.train:flush() -- an unwritable log_dir fails here, before any training
    end

    if every then
      function cb:on_train_batch_end(_, logs)
        self.batches = self.batches + 1
        if self.batches % every ~= 0 then return end
        for _, k in ipairs(sorted(logs)) do self.train:scalar("batch_" .. k, self.batches, logs[k]) end
      end
    end

    function cb:on_epoch_end(epoch, logs)
      for _, k in ipairs(sorted(logs)) do
        local val = k:match("^val_(.+)$")
        if val then
          self.validation = self.validation or core.tb_open(o.log_dir .. "/validation")
          self.validation:scalar("epoch_" .. val, epoch, logs[k])
        else
          self.train:scalar("epoch_" .. k, epoch, logs[k])
        end
      end
      if o.histogram_freq > 0 and epoch % o.histogram_freq == 0 then
        for _, layer in ipairs(self.model:keras_layers()) do
          for _, name in ipairs(layer.weights) do
            -- Keras: the variable's name with ':' made '_', "dense/kernel_0"
            self.train:histogram(name .. "_0", epoch, self.model.state.store, name)
            -- Keras logs images with the histograms, every histogram_freq epochs.
            if o.write_images then self.train:images(name .. "_0", epoch, self.model.state.store, name) end
          end
        end
      end
      flush(self)
    end

    function cb:on_train_end() flush(self) end
    return cb
  end
end
