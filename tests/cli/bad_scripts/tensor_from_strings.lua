local t = data.tensor { { 1, "2" } } --!
