local d = nn.Dens { 3 } --!
