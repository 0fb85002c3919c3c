package sqlscope

import (
	"sort"
	"strings"
)

// The function allowlist. A function is listed only when it computes on its
// arguments alone: nothing that names a table, dictionary, file, URL or setting
// (dictGet, joinGet, hasColumnInTable, file, url, s3, remote, getSetting, ...),
// nothing that reports on the server (version, hostName, uptime, currentUser, ...),
// no table functions and no operator spellings as functions (in, notIn, globalIn),
// whose second argument ClickHouse reads as a table. Anything not listed is refused.

var aggregateFuncs = words(`count sum avg min max any anyLast anyHeavy argMin argMax uniq uniqExact uniqCombined
uniqHLL12 groupArray groupUniqArray groupArrayInsertAt topK quantile quantiles quantileExact quantilesExact
quantileTiming quantileDeterministic median medianExact stddevPop stddevSamp varPop varSamp covarPop covarSamp corr
sumWithOverflow groupBitAnd groupBitOr groupBitXor countDistinct`)

var scalarFuncs = words(`
if multiIf ifNull nullIf coalesce assumeNotNull isNull isNotNull toNullable greatest least transform
plus minus multiply divide intDiv intDivOrZero modulo negate abs gcd lcm round roundDown floor ceil trunc sqrt cbrt
exp exp2 exp10 log log2 log10 pow power sign isFinite isInfinite isNaN
equals notEquals less greater lessOrEquals greaterOrEquals and or not xor
bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitCount
length lengthUTF8 lower upper lowerUTF8 upperUTF8 reverse reverseUTF8 concat substring substr substringUTF8
startsWith endsWith trim trimLeft trimRight trimBoth position positionCaseInsensitive positionUTF8
positionCaseInsensitiveUTF8 match extract extractAll like notLike ilike notILike
replace replaceAll replaceOne replaceRegexpOne replaceRegexpAll splitByChar splitByString splitByRegexp
arrayStringConcat leftPad rightPad repeat format empty notEmpty toValidUTF8 base64Encode base64Decode
tryBase64Decode hex unhex left right multiSearchAny multiSearchFirstPosition countSubstrings countMatches
appendTrailingCharIfAbsent convertCharset normalizeQuery
cityHash64 sipHash64 sipHash128 MD5 SHA1 SHA224 SHA256 xxHash32 xxHash64 murmurHash2_64 murmurHash3_64 farmHash64
intHash32 intHash64 halfMD5
JSONHas JSONLength JSONType JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat
JSONExtractBool JSONExtractRaw JSONExtractKeys JSONExtractArrayRaw JSONExtractKeysAndValues JSONExtractKeysAndValuesRaw
visitParamHas visitParamExtractString visitParamExtractRaw visitParamExtractInt visitParamExtractUInt
visitParamExtractFloat visitParamExtractBool simpleJSONHas simpleJSONExtractString simpleJSONExtractRaw
simpleJSONExtractInt simpleJSONExtractUInt simpleJSONExtractFloat simpleJSONExtractBool isValidJSON
now now64 today yesterday toDate toDateTime toDateTime64 toDateOrNull toDateTimeOrNull toDateOrZero toDateTimeOrZero
toStartOfDay toStartOfHour toStartOfMinute toStartOfSecond toStartOfMonth toStartOfWeek toStartOfYear
toStartOfQuarter toStartOfFiveMinute toStartOfFiveMinutes toStartOfTenMinutes toStartOfFifteenMinutes
toStartOfInterval toMonday toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond
toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss toUnixTimestamp toUnixTimestamp64Milli toUnixTimestamp64Micro
toUnixTimestamp64Nano fromUnixTimestamp fromUnixTimestamp64Milli fromUnixTimestamp64Nano formatDateTime dateDiff
age addSeconds addMinutes addHours addDays addWeeks addMonths addQuarters addYears subtractSeconds subtractMinutes
subtractHours subtractDays subtractWeeks subtractMonths subtractQuarters subtractYears parseDateTimeBestEffort
parseDateTimeBestEffortOrNull parseDateTimeBestEffortOrZero parseDateTime64BestEffort toTimeZone toISOWeek
toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth toIntervalQuarter
toIntervalYear timeSlot
toString toFixedString toInt8 toInt16 toInt32 toInt64 toUInt8 toUInt16 toUInt32 toUInt64 toFloat32 toFloat64
toInt8OrZero toInt16OrZero toInt32OrZero toInt64OrZero toUInt8OrZero toUInt16OrZero toUInt32OrZero toUInt64OrZero
toFloat32OrZero toFloat64OrZero toInt32OrNull toInt64OrNull toUInt32OrNull toUInt64OrNull toFloat64OrNull
toDecimal32 toDecimal64 toDecimal128 toTypeName toStringCutToZero
array arrayConcat arrayElement has hasAll hasAny indexOf range arrayJoin arrayMap arrayFilter arrayExists
arrayAll arrayCount arraySum arrayAvg arrayMin arrayMax arrayFirst arrayFirstIndex arrayLast arraySort
arrayReverseSort arrayReverse arrayUniq arrayDistinct arrayEnumerate arrayEnumerateUniq arraySlice arrayPushBack
arrayPushFront arrayPopBack arrayPopFront arrayReduce arrayZip arrayIntersect arrayCompact arrayFlatten
arrayCumSum arrayDifference arrayProduct countEqual emptyArrayString emptyArrayUInt64 arrayResize
tuple tupleElement
domain domainWithoutWWW topLevelDomain protocol path pathFull queryString fragment extractURLParameter
extractURLParameters cutQueryString cutFragment cutWWW firstSignificantSubdomain
IPv4NumToString IPv4StringToNum IPv6NumToString toIPv4 toIPv6 isIPv4String isIPv6String
generateUUIDv4 toUUID UUIDStringToNum UUIDNumToString
sleep sleepEachRow throwIf identity ignore materialize
`)

// aggregateCombinators may follow an aggregate's name: countIf, uniqArray, sumIfOrNull.
var aggregateCombinators = []string{"If", "Array", "Distinct", "OrNull", "OrDefault"}

func words(s string) map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(s) {
		m[strings.ToLower(w)] = w
	}
	return m
}

// lookupFunction returns the canonical spelling of an allowed function. Names are
// matched case-insensitively; the canonical spelling is what is printed.
func lookupFunction(name string) (string, bool) {
	low := strings.ToLower(name)
	if c, ok := scalarFuncs[low]; ok {
		return c, true
	}
	base, suffix, ok := aggregateBase(low)
	return base + suffix, ok
}

// aggregateBase splits an aggregate's lower-cased name into the canonical base
// and its combinators (sumIfOrNull: sum, IfOrNull).
func aggregateBase(low string) (base, suffix string, ok bool) {
	for n := 0; n <= 3; n++ {
		if c, ok := aggregateFuncs[low]; ok {
			return c, suffix, true
		}
		found := false
		for _, comb := range aggregateCombinators {
			if l := strings.ToLower(comb); strings.HasSuffix(low, l) && len(low) > len(l) {
				low, suffix, found = low[:len(low)-len(l)], comb+suffix, true
				break
			}
		}
		if !found {
			break
		}
	}
	return "", "", false
}

func isAggregate(canon string) bool {
	_, _, ok := aggregateBase(strings.ToLower(canon))
	return ok
}

// Functions returns the allowlist, sorted, for documentation and tests.
func Functions() []string {
	var out []string
	for _, m := range []map[string]string{scalarFuncs, aggregateFuncs} {
		for _, c := range m {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}
