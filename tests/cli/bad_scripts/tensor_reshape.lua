local t = data.zeros { 4, 3 }
local r = t:reshape { 5, -1 } --!
