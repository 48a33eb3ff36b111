local t = data.zeros { 4611686018427387904, 4 } --!
