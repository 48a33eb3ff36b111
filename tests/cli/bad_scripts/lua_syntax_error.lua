local m = nn.Sequential {
  nn.Dense { 3 }
  nn.Dense { 4 } --!
}
