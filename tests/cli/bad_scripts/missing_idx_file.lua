local t = data.idx("nowhere-idx3-ubyte") --!
