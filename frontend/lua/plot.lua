-- nnc.plot and nnc.show_images: the seeds' matplotlib figures as PNGs
-- (runtime/store/plot.c draws them). nnc.plot(history, path, {title}) shows
-- loss/val_loss on the left and accuracy/val_accuracy on the right, as the
-- seeds' plt.subplot(1, 2, ...) figure; nnc.show_images(x, path, {labels,
-- predictions, class_names, cols}) their plt.imshow grid with a caption per
-- image, in red where the prediction is wrong.
local core = ...

-- Called by nn.lua with nn and its internals.
return function(nn, I)
  local fail, show = I.fail, I.show

  local function check_png(what, path)
    if type(path) ~= "string" or not path:match("%.png$") then
      fail("%s: the picture is written as PNG: give a path ending in .png, got %s", what, show(path))
    end
  end

  local function check_opts(what, opts, valid)
    if opts == nil then return {} end
    if type(opts) ~= "table" then fail("%s: options are a table like { title = ... }, got %s", what, type(opts)) end
    local names = {}
    for _, k in ipairs(valid) do names[k] = true end
    for k in pairs(opts) do
      if not names[k] then
        fail("%s got an unknown option '%s' (valid: %s)", what, tostring(k), table.concat(valid, ", "))
      end
    end
    return opts
  end

  local function series(history, key)
    local v = history[key]
    if v == nil then return nil end
    if type(v) ~= "table" then fail("nnc.plot: history.%s is not a list of numbers", key) end
    for i, y in ipairs(v) do
      if type(y) ~= "number" then fail("nnc.plot: history.%s[%d] is %s, not a number", key, i, show(y)) end
    end
    return { name = key, y = v }
  end

  local function panel(history, title, keys)
    local p = { title = title, xlabel = "Epoch", ylabel = keys[1], series = {} }
    for _, k in ipairs(keys) do
      local s = series(history, k)
      if s then p.series[#p.series + 1] = s end
    end
    return #p.series > 0 and p or nil
  end

  function nnc.plot(history, path, opts)
    if type(history) ~= "table" then fail("nnc.plot takes the history model:fit returned, got %s", type(history)) end
    check_png("nnc.plot", path)
    opts = check_opts("nnc.plot", opts, { "title" })
    -- The accuracy's name is the user's: "acc" logs acc and val_acc.
    local acc = history.accuracy and "accuracy" or history.acc and "acc" or "accuracy"
    local panels = {}
    panels[#panels + 1] = panel(history, "Loss", { "loss", "val_loss" })
    panels[#panels + 1] = panel(history, "Accuracy", { acc, "val_" .. acc })
    if #panels == 0 then fail("nnc.plot: the history has no loss or accuracy to plot") end
    if core.dry_run then return end
    core.plot_curves(path, opts.title, panels)
  end

  -- A label list from a tensor or a Lua table: class indices, or for a
  -- predictions tensor of probabilities f32[N, classes] each row's argmax.
  local function classes_of(what, v, n)
    if v == nil then return nil end
    local out = {}
    if type(v) == "table" then
      for i = 1, n do out[i] = v[i] end
    elseif v.shape then
      if #v.shape > 2 then fail("nnc.show_images: %s must be class indices [N] or probabilities [N, classes]", what) end
      if v.shape[1] ~= n then fail("nnc.show_images: %s has %d rows for %d images", what, v.shape[1], n) end
      for i = 1, n do
        local row = v[i]
        if type(row) == "number" then
          out[i] = row
        else
          local best = 1
          for j = 2, v.shape[2] do if row[j] > row[best] then best = j end end
          out[i] = best - 1
        end
      end
    end
    for i = 1, n do
      if math.type(out[i]) ~= "integer" and not (type(out[i]) == "number" and out[i] == math.floor(out[i])) then
        fail("nnc.show_images: %s[%d] is %s, not a class index", what, i, show(out[i]))
      end
      out[i] = math.tointeger(out[i])
    end
    return out
  end

  function nnc.show_images(x, path, opts)
    if type(x) ~= "userdata" or not x.shape then fail("nnc.show_images takes a tensor of images, got %s", type(x)) end
    check_png("nnc.show_images", path)
    opts = check_opts("nnc.show_images", opts, { "labels", "predictions", "class_names", "cols" })
    local s = x.shape
    if x.dtype ~= "f32" or not (#s == 3 or (#s == 4 and (s[4] == 1 or s[4] == 3))) then
      fail("nnc.show_images takes f32[N,H,W], f32[N,H,W,1] or f32[N,H,W,3] images, got %s", tostring(x):match("^tensor%((.-)%)"))
    end
    local n = s[1]
    if n < 1 or n > 1000 then fail("nnc.show_images: %d images; show 1 to 1000 (slice the tensor)", n) end
    local cols = opts.cols or 4
    if math.type(cols) ~= "integer" or cols < 1 then fail("nnc.show_images: cols must be a positive integer, got %s", show(cols)) end
    -- A dry run's predict returns its input, not predictions.
    if core.dry_run then return end
    local labels = classes_of("labels", opts.labels, n)
    local predictions = classes_of("predictions", opts.predictions, n)
    local names = opts.class_names
    local function name(k)
      return names and names[k + 1] or tostring(k)
    end
    local captions, wrong
    if labels or predictions then
      captions, wrong = {}, {}
      for i = 1, n do
        if predictions and labels then
          captions[i] = name(predictions[i]) .. " (" .. name(labels[i]) .. ")"
          wrong[i] = predictions[i] ~= labels[i]
        else
          captions[i] = name((predictions or labels)[i])
          wrong[i] = false
        end
      end
    end
    core.plot_images(path, x, captions, wrong, cols)
  end
end
