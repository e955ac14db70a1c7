// Check loads the example data file with the generated C# (GameData.cs)
// and checks its values; codegen's tests compile both with Mono's mcs and
// run it. Usage: mono check.exe data.bytes
using System;
using System.IO;
using GameData;

public static class Check
{
    static void Expect(bool ok, string what)
    {
        if (!ok) throw new Exception("check failed: " + what);
    }

    public static int Main(string[] args)
    {
        var bytes = File.ReadAllBytes(args[0]);
        var d = Data.Load(bytes);
        Expect(d.Version == "1", "version");
        Expect(d.Items.Length == 3 && d.Dungeons.Length == 2 && d.Shop.Length == 2 && d.Events.Length == 2 && d.Strings.Length == 5, "row counts");
        var shield = d.ItemsByKey("shield");
        Expect(shield != null && shield.Rarity == ItemsRarity.Epic && shield.Price == 1200 && !shield.Stackable && shield.Tags.Length == 2 && shield.Tags[1] == "weapon", "shield");
        Expect(d.ItemsByKey("nothing") == null, "missing item");
        DungeonsRow cave;
        Expect(d.TryGetDungeons("cave", out cave) && cave.MaxDPS == 2500.5 && cave.Gold == 250 && cave.Rewards[1] == "sword" && cave.RewardCounts[0] == 1, "cave");
        Expect(d.ShopByKey(2).ItemID == "sword", "shop 2");
        var ev = d.EventsByKey("double_gold");
        Expect(ev.StartsAt == new DateTimeOffset(2026, 12, 24, 10, 0, 0, TimeSpan.FromHours(9)) && ev.StartsAt.Offset == TimeSpan.FromHours(9), "double_gold starts " + ev.StartsAt);
        Expect(d.EventsByKey("new_year").Dungeon == "", "new_year dungeon");
        Expect(d.StringsByKey("dungeon.forest").Ko == "속삭이는 숲", "korean string");
        // A flipped byte is refused by its content hash.
        bytes[bytes.Length - 2] ^= 1;
        try
        {
            Data.Load(bytes);
            Expect(false, "a corrupted file loaded");
        }
        catch (DataLoadException e)
        {
            Expect(e.Kind == "checksum", "kind " + e.Kind);
        }
        bytes[bytes.Length - 2] ^= 1;
        bytes[4] = Data.FormatVersion + 1;
        try
        {
            Data.Load(bytes);
            Expect(false, "a newer format loaded");
        }
        catch (DataLoadException e)
        {
            Expect(e.Kind == "newer-format", "kind " + e.Kind);
        }
        Console.WriteLine("ok: version " + d.Version + ", " + d.Items.Length + " items");
        return 0;
    }
}
