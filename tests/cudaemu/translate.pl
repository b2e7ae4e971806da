#!/usr/bin/perl
# translate.pl SRC.cu OUT.cpp -- turn one CUDA source of csrc/cuda into C++
# for the host emulator (see emu.cpp): each launch
#     kernel<<<grid, block, shared, stream>>>(args)
# becomes ::emu::launch(::emu::config(grid, block, shared, stream), "kernel",
# kernel, args); `extern __shared__ T name[];` becomes a pointer to the
# launch's dynamic shared memory; each static __shared__ array a reference
# to storage the emulator poisons at every block; NULL becomes nullptr (a launch argument
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
# alignment of shared arrays: the host code reads them a word at a time
$text =~ s/\b__align__\s*\(\s*\d+\s*\)\s*//g;
# static shared arrays: storage the emulator hands each block afresh, poisoned
# (`T a[N][M], b[K];` -> one reference per declarator, keyed by a static byte)
$text =~ s{(?<!extern )__shared__\s+([^;]*?);}{shared_decl($1)}ge;
$text =~ s/\bNULL\b/nullptr/g;
die "translate.pl: $src: a launch left untranslated\n" if $text =~ /<<</;

sub shared_decl {
    my ($decl) = @_;
    my @parts = split /\s*,\s*/, $decl;
    my ($type, $first) = $parts[0] =~ /^(.*?)\s*\b(\w+\s*\[.*)$/s
        or die "translate.pl: $src: cannot read the shared declaration '$decl'\n";
    $parts[0] = $first;
    my $out = '';
    for my $p (@parts) {
        my ($name, $dims) = $p =~ /^(\w+)\s*((?:\[[^\]]+\]\s*)+)$/
            or die "translate.pl: $src: cannot read the shared array '$p'\n";
        $out .= "static char emu_key_$name; $type (&$name)$dims = "
            . "*reinterpret_cast<$type (*)$dims>(::emu::block_shared(&emu_key_$name, sizeof($type $dims))); ";
    }
    return $out;
}

my $tmp = "$out.tmp";
open(my $o, '>', $tmp) or die "translate.pl: cannot write $tmp: $!\n";
print $o "#line 1 \"$src\"\n", $text;
close $o or die "translate.pl: cannot write $tmp: $!\n";
rename $tmp, $out or die "translate.pl: cannot rename $tmp: $!\n";
