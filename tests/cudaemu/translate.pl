#!/usr/bin/perl
# translate.pl SRC.cu OUT.cpp -- turn one CUDA source of csrc/cuda into C++
# for the host emulator (see emu.cpp): each launch
#     kernel<<<grid, block, shared, stream>>>(args)
# becomes ::emu::launch(::emu::config(grid, block, shared, stream), "kernel",
# kernel, args); `extern __shared__ T name[];` becomes a pointer to the
# launch's dynamic shared memory; NULL becomes nullptr (a launch argument
# must convert to the kernel's pointer type).  #line keeps the compiler's
# messages pointing into the original file.
use strict;
use warnings;

my ($src, $out) = @ARGV;
die "usage: translate.pl SRC.cu OUT.cpp\n" unless defined $out;
open(my $in, '<', $src) or die "translate.pl: cannot read $src: $!\n";
my $text = do { local $/; <$in> };
close $in;

my $kernel = qr/([A-Za-z_]\w*(?:<[^<>;()]*>)?)/;
my $n = 0;
$n += $text =~ s/$kernel\s*<<<(.*?)>>>\s*\(\s*\)/::emu::launch(::emu::config($2), "$1", $1)/g;
$n += $text =~ s/$kernel\s*<<<(.*?)>>>\s*\(/::emu::launch(::emu::config($2), "$1", $1, /g;
$text =~ s/extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;/$1 *$2 = ($1 *)::emu::dynamic_shared();/g;
$text =~ s/\bNULL\b/nullptr/g;
die "translate.pl: $src: a launch left untranslated\n" if $text =~ /<<</;

my $tmp = "$out.tmp";
open(my $o, '>', $tmp) or die "translate.pl: cannot write $tmp: $!\n";
print $o "#line 1 \"$src\"\n", $text;
close $o or die "translate.pl: cannot write $tmp: $!\n";
rename $tmp, $out or die "translate.pl: cannot rename $tmp: $!\n";
